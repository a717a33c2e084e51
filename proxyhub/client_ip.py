"""Which address a request really came from, behind proxies we trust (PROXYHUB_TRUSTED_PROXIES).

Behind a load balancer every connection comes from the balancer, so the throttles that count per
address (wrong keys: gateway.keyguard; sign-ins: django-axes) would count the whole team as one.
The balancer names the client in X-Forwarded-For, but anyone can send that header too, so it is
believed only as far as the proxies that wrote it are trusted: each proxy appends the address it
saw, so the list is read from the right, past our own trusted hops, and the first address that is
not one of them is the client. What a client writes itself stays to the left of that and is never
read. Nothing is trusted by default: the socket's peer is the client.

Pure (no Django): the callers pass the networks from settings.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable
from typing import Union

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_trusted(entries: Iterable[str]) -> tuple[Network, ...]:
    """Networks from addresses and CIDRs (``10.0.0.5``, ``172.16.0.0/12``, ``fd00::/8``); a bad entry
    raises ValueError, so a typo in the setting stops the server instead of silently trusting no one."""
    networks: list[Network] = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"PROXYHUB_TRUSTED_PROXIES: {entry!r} is not an IP address or network") from None
        networks.append(_unmapped_network(network))
    return tuple(networks)


def parse_address(value: str) -> Address | None:
    """An address as X-Forwarded-For or a socket names it (``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``,
    ``[2001:db8::1]:443``); an IPv4-mapped IPv6 address becomes IPv4. None when it is not an address."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        if end == -1 or (value[end + 1:] and not value[end + 1:].startswith(":")):
            return None
        value = value[1:end]
    elif value.count(":") == 1:  # IPv4 with a port (an IPv6 address has two colons or more)
        value = value.split(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Collection[Network]) -> str | None:
    """The client's address: ``peer`` (the socket's), unless it is a trusted proxy; then X-Forwarded-For
    (``forwarded_for``, every such header joined by commas) read from the right, skipping trusted hops:
    the first untrusted address. A malformed entry ends the walk at the trusted hop that passed it on
    (the nearest address we can vouch for); a list of trusted hops only gives its leftmost.

    A peer that is not an IP address (a Unix socket) is returned as it is, and None for no peer."""
    if not peer:
        return None
    address = parse_address(peer)
    if address is None:
        return peer
    if not trusted or not _trusted(address, trusted):
        return str(address)
    for entry in reversed((forwarded_for or "").split(",")):
        hop = parse_address(entry)
        if hop is None:
            break
        address = hop
        if not _trusted(hop, trusted):
            break
    return str(address)


def forwarded_for(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """Every X-Forwarded-For of ASGI ``headers``, joined in order as one list."""
    return ",".join(value.decode("latin-1") for name, value in headers if name.lower() == b"x-forwarded-for")


def _trusted(address: Address, trusted: Collection[Network]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def _unmapped_network(network: Network) -> Network:
    """``::ffff:10.0.0.0/104`` as ``10.0.0.0/8``: addresses are compared unmapped (parse_address)."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network

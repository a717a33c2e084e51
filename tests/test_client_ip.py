"""proxyhub.client_ip: the client's address behind trusted proxies, and what a client cannot forge."""
from __future__ import annotations

import pytest

from proxyhub.client_ip import client_ip, forwarded_for, parse_address, parse_trusted

BALANCER = parse_trusted(["10.0.0.5"])
CHAIN = parse_trusted(["10.0.0.0/8", "192.168.1.1", "fd00::/8"])


@pytest.mark.parametrize("peer, header, trusted, expected", [
    # Nobody trusted (the default): the socket's peer, whatever the header says.
    ("203.0.113.7", None, (), "203.0.113.7"),
    ("203.0.113.7", "198.51.100.1", (), "203.0.113.7"),
    ("10.0.0.5", "198.51.100.1", (), "10.0.0.5"),
    ("127.0.0.1", "1.2.3.4", (), "127.0.0.1"),
    # A peer that is not a trusted proxy: its header is the client's own writing, never read.
    ("203.0.113.7", "198.51.100.1", BALANCER, "203.0.113.7"),
    ("203.0.113.7", "10.0.0.5", BALANCER, "203.0.113.7"),
    # Behind the balancer: the address it appended.
    ("10.0.0.5", "198.51.100.1", BALANCER, "198.51.100.1"),
    ("10.0.0.5", " 198.51.100.1 ", BALANCER, "198.51.100.1"),
    # Spoofing: the client sent its own X-Forwarded-For, the balancer appended the real address.
    ("10.0.0.5", "1.1.1.1, 198.51.100.1", BALANCER, "198.51.100.1"),
    ("10.0.0.5", "127.0.0.1, 198.51.100.1", BALANCER, "198.51.100.1"),
    ("10.0.0.5", "10.0.0.5, 198.51.100.1", BALANCER, "198.51.100.1"),  # posing as the balancer
    ("10.0.0.5", "not-an-ip, 198.51.100.1", BALANCER, "198.51.100.1"),
    # A chain of trusted hops (a CDN's edge, then the balancer), CIDRs: the first untrusted from the right.
    ("10.0.0.5", "198.51.100.1, 10.9.9.9, 192.168.1.1", CHAIN, "198.51.100.1"),
    ("10.0.0.5", "6.6.6.6, 198.51.100.1, 10.9.9.9", CHAIN, "198.51.100.1"),
    ("192.168.1.1", "198.51.100.1", CHAIN, "198.51.100.1"),
    ("192.168.1.2", "198.51.100.1", CHAIN, "192.168.1.2"),  # one address past the trusted one
    # Only trusted hops: the leftmost (an internal caller behind the balancer).
    ("10.0.0.5", "10.1.2.3, 10.0.0.9", CHAIN, "10.1.2.3"),
    # No header, or an empty one, from a trusted proxy: the proxy itself.
    ("10.0.0.5", None, BALANCER, "10.0.0.5"),
    ("10.0.0.5", "", BALANCER, "10.0.0.5"),
    ("10.0.0.5", " , ", BALANCER, "10.0.0.5"),
    # Malformed entries end the walk at the trusted hop that passed them on, never past them.
    ("10.0.0.5", "unknown", BALANCER, "10.0.0.5"),
    ("10.0.0.5", "198.51.100.1, garbage", BALANCER, "10.0.0.5"),
    ("10.0.0.5", "198.51.100.1,,", BALANCER, "10.0.0.5"),
    ("10.0.0.5", "6.6.6.6, 10.0.0.7, _hidden", CHAIN, "10.0.0.5"),
    ("10.0.0.5", "999.1.1.1", BALANCER, "10.0.0.5"),
    ("10.0.0.5", "198.51.100.1" + ", x" * 50, BALANCER, "10.0.0.5"),
    # Ports, as some proxies write them.
    ("10.0.0.5", "198.51.100.1:53211", BALANCER, "198.51.100.1"),
    ("10.0.0.5", "[2001:db8::7]:443", BALANCER, "2001:db8::7"),
    ("10.0.0.5", "[2001:db8::7", BALANCER, "10.0.0.5"),
    ("10.0.0.5", "[2001:db8::7]x", BALANCER, "10.0.0.5"),
    # IPv6 peers, clients and networks; written in any form, answered in the canonical one.
    ("fd00::1", "2001:DB8:0:0::7", CHAIN, "2001:db8::7"),
    ("fd00::1", "2001:db8::7, fd12::9", CHAIN, "2001:db8::7"),
    ("fe80::1", "2001:db8::7", CHAIN, "fe80::1"),  # not in fd00::/8
    ("2001:db8::7", "1.2.3.4", (), "2001:db8::7"),
    # An IPv4 peer on a dual-stack socket (::ffff:a.b.c.d) is that IPv4 address.
    ("::ffff:10.0.0.5", "198.51.100.1", BALANCER, "198.51.100.1"),
    ("::ffff:203.0.113.7", "198.51.100.1", BALANCER, "203.0.113.7"),
    ("10.0.0.5", "::ffff:198.51.100.1", BALANCER, "198.51.100.1"),
    # An IPv4 network does not trust IPv6 addresses, and the other way round.
    ("::1", "198.51.100.1", parse_trusted(["127.0.0.1"]), "::1"),
    ("127.0.0.1", "198.51.100.1", parse_trusted(["::1"]), "127.0.0.1"),
    # A peer that is no IP address (a Unix socket) is kept as it is; no peer at all is None.
    ("/run/proxyhub.sock", "198.51.100.1", BALANCER, "/run/proxyhub.sock"),
    (None, "198.51.100.1", BALANCER, None),
    ("", "198.51.100.1", BALANCER, None),
])
def test_the_client_is_the_first_untrusted_address_from_the_right(peer, header, trusted, expected):
    assert client_ip(peer, header, trusted) == expected


def test_parse_trusted_takes_addresses_and_networks_and_refuses_a_typo():
    assert [str(n) for n in parse_trusted(["10.0.0.5", " 172.16.0.0/12 ", "", "fd00::/8", "10.1.2.3/8"])] == [
        "10.0.0.5/32", "172.16.0.0/12", "fd00::/8", "10.0.0.0/8"]
    assert [str(n) for n in parse_trusted(["::ffff:10.0.0.0/104"])] == ["10.0.0.0/8"]
    assert parse_trusted([]) == ()
    for bad in (["10.0.0.256"], ["proxy.internal"], ["10.0.0.0/33"], ["*"]):
        with pytest.raises(ValueError, match="PROXYHUB_TRUSTED_PROXIES"):
            parse_trusted(bad)


def test_parse_address_forms():
    assert str(parse_address("1.2.3.4:80")) == "1.2.3.4"
    assert str(parse_address("[::1]")) == "::1"
    assert str(parse_address("fe80::1%eth0")) == "fe80::1%eth0"
    assert parse_address("1.2.3.4:80:90") is None
    assert parse_address("") is None


def test_repeated_headers_are_one_list_in_order():
    headers = [(b"x-forwarded-for", b"1.1.1.1"), (b"host", b"x"), (b"X-Forwarded-For", b"198.51.100.1")]
    assert forwarded_for(headers) == "1.1.1.1,198.51.100.1"
    assert client_ip("10.0.0.5", forwarded_for(headers), BALANCER) == "198.51.100.1"
    assert forwarded_for([]) == ""

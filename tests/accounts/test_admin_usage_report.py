"""/admin/usage/: the staff report by key, user, model and day over 24 h / 7 d / 30 d, with CSV."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(api_key_factory, usage_factory, priced_catalog):
    now = timezone.now()
    alice, _ = api_key_factory("alice", name="laptop")
    bob, _ = api_key_factory("bob", name="desk")
    usage_factory(alice, "claude-sonnet-4-6", input_tokens=10, output_tokens=2)
    usage_factory(alice, "gpt-5.5", input_tokens=5, output_tokens=1)
    usage_factory(bob, "gpt-5.5", at=now - timedelta(days=3), input_tokens=7, output_tokens=3)
    usage_factory(bob, "gpt-5.5", at=now - timedelta(days=20), input_tokens=1000)
    return {"alice": alice, "bob": bob}


def body(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def rows(response):
    return {tuple(r[:-6]): r[-6:-1] for r in response.context["table"]}


def costs(response):
    return {tuple(r[:-6]): r[-1] for r in response.context["table"]}


def test_report_is_staff_only(client, alice_client, django_user_model):
    assert client.get("/admin/usage/")["Location"].startswith("/admin/login/")
    assert alice_client.get("/admin/usage/")["Location"].startswith("/admin/login/")
    assert alice_client.get("/admin/usage/csv/")["Location"].startswith("/admin/login/")
    staff = django_user_model.objects.create_user("helper", password="pw", is_staff=True)
    helper = Client()
    helper.force_login(staff)
    assert helper.get("/admin/usage/").status_code == 403  # staff, but may not view usage records
    staff.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    assert helper.get("/admin/usage/").status_code == 200


def test_report_groups_by_key_user_model_and_day(staff_client, world):
    by_key = staff_client.get("/admin/usage/?by=key&period=7d")
    assert rows(by_key) == {(world["alice"].prefix, "laptop", "alice"): [2, 15, 3, 0, 0],
                            (world["bob"].prefix, "desk", "bob"): [1, 7, 3, 0, 0]}
    assert rows(staff_client.get("/admin/usage/?by=user&period=7d")) == {("alice",): [2, 15, 3, 0, 0],
                                                                         ("bob",): [1, 7, 3, 0, 0]}
    assert rows(staff_client.get("/admin/usage/?by=model&period=30d")) == {
        ("claude-sonnet-4-6",): [1, 10, 2, 0, 0], ("gpt-5.5",): [3, 1012, 4, 0, 0]}
    assert len(rows(staff_client.get("/admin/usage/?by=day&period=30d"))) == 3
    assert by_key.context["total"]["requests"] == 3


def test_report_estimates_cost_from_catalog_prices(staff_client, world):
    # alice: 10 input + 2 output Sonnet tokens at $3 / $15 per million; GPT has no prices here.
    by_key = staff_client.get("/admin/usage/?by=key&period=7d")
    assert costs(by_key) == {(world["alice"].prefix, "laptop", "alice"): 0.00006,
                             (world["bob"].prefix, "desk", "bob"): None}
    assert by_key.context["total"]["estimated_cost_usd"] == 0.00006
    page = by_key.content.decode()
    assert "<th class=\"num\">estimated_cost_usd</th>" in page and ">$0.00<" in page and ">—<" in page
    csv_rows = list(csv.DictReader(io.StringIO(body(staff_client.get("/admin/usage/csv/?by=key&period=7d")))))
    assert sorted(r["estimated_cost_usd"] for r in csv_rows) == ["", "6e-05"]


def test_period_decides_which_records_count(staff_client, world):
    assert staff_client.get("/admin/usage/?by=user&period=24h").context["total"]["requests"] == 2
    assert staff_client.get("/admin/usage/?by=user&period=7d").context["total"]["requests"] == 3
    assert staff_client.get("/admin/usage/?by=user&period=30d").context["total"]["requests"] == 4
    # Unknown values fall back to the defaults rather than failing.
    response = staff_client.get("/admin/usage/?by=nope&period=1y")
    assert response.status_code == 200 and (response.context["by"], response.context["period"]) == ("key", "7d")


def test_report_for_one_key_from_its_change_page(staff_client, world):
    response = staff_client.get(f"/admin/usage/?key={world['bob'].pk}&period=30d&by=model")
    assert rows(response) == {("gpt-5.5",): [2, 1007, 3, 0, 0]}
    assert staff_client.get("/admin/usage/?key=999999").status_code == 404


def test_report_page_has_the_chart_and_links(staff_client, world):
    page = staff_client.get("/admin/usage/?period=7d").content.decode()
    chart = page[page.index('<figure class="chart">'):]
    svg = chart[:chart.index("</svg>")]
    assert svg.count("<rect") == 7 and "<script" not in svg
    assert "/admin/usage/csv/?by=key&amp;period=7d" in page


def test_csv_export_matches_the_table(staff_client, world):
    response = staff_client.get("/admin/usage/csv/?by=model&period=30d")
    assert response["Content-Disposition"] == 'attachment; filename="proxyhub-usage-model-30d.csv"'
    lines = list(csv.DictReader(io.StringIO(body(response))))
    assert [(r["model"], r["requests"], r["input_tokens"]) for r in lines] == [
        ("claude-sonnet-4-6", "1", "10"), ("gpt-5.5", "3", "1012")]


def test_admin_index_links_to_the_report(staff_client):
    assert 'href="/admin/usage/"' in staff_client.get("/admin/").content.decode()


def test_report_costs_a_fixed_number_of_queries(staff_client, world, api_key_factory, usage_factory,
                                                django_assert_max_num_queries):
    for n in range(5):
        extra, _ = api_key_factory(f"user{n}")
        usage_factory(extra, input_tokens=1)
    with django_assert_max_num_queries(8):
        staff_client.get("/admin/usage/?by=key&period=7d")

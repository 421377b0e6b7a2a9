"""Push subscriptions through the API, and the public VAPID key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from fmn.core.settings import Settings
from fmn.inbox.vapid import load_key, public_key
from tests.factories import make_push_subscription, make_user
from tests.harness.signing import VAPID_KEY

SUBSCRIPTIONS = "/api/v1/users/alice/push-subscriptions"
KEYS = {"p256dh": "BN" + "A" * 85, "auth": "A" * 22}


def browser(endpoint: str = "https://push.example.org/send/abc", **extra: Any) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": KEYS,
        "device": "Firefox",
        **extra,
    }


async def test_the_public_key_is_the_configured_ones(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/push/vapid-public-key")
    assert response.json() == {"public_key": public_key(load_key(VAPID_KEY))}


async def test_without_a_key_there_is_no_web_push(make_app: Any, api_settings: Settings) -> None:
    settings = api_settings.model_copy(
        update={"web": api_settings.web.model_copy(update={"vapid_private_key": None})}
    )
    app = await make_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        response = await http.get("/api/v1/push/vapid-public-key")
    assert response.status_code == 404


@pytest.fixture
async def alice(session: AsyncSession) -> None:
    await make_user(session, "alice")
    await session.commit()


async def test_subscribe_once_per_browser_list_and_delete(
    client: httpx.AsyncClient, auth: Any, alice: None
) -> None:
    created = await client.post(SUBSCRIPTIONS, json=browser(), headers=auth("alice"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["endpoint"] == browser()["endpoint"] and body["device"] == "Firefox"
    again = await client.post(SUBSCRIPTIONS, json=browser(device="renamed"), headers=auth("alice"))
    assert again.status_code == 200 and again.json() == body
    listed = await client.get(SUBSCRIPTIONS, headers=auth("alice"))
    assert listed.json() == [body]
    gone = await client.delete(f"{SUBSCRIPTIONS}/{body['id']}", headers=auth("alice"))
    assert gone.status_code == 204
    assert (await client.get(SUBSCRIPTIONS, headers=auth("alice"))).json() == []
    again = await client.delete(f"{SUBSCRIPTIONS}/{body['id']}", headers=auth("alice"))
    assert again.status_code == 404


async def test_a_browser_that_changes_hands_stops_pushing_to_the_first_user(
    client: httpx.AsyncClient, auth: Any, session: AsyncSession
) -> None:
    bob = await make_user(session, "bob")
    bobs = await make_push_subscription(session, bob)
    await make_user(session, "alice")
    await session.commit()
    taken = await client.post(SUBSCRIPTIONS, json=browser(bobs.endpoint), headers=auth("alice"))
    assert taken.status_code == 201
    assert (
        await client.get("/api/v1/users/bob/push-subscriptions", headers=auth("bob"))
    ).json() == []
    # Someone else's subscription id is no subscription of alice's.
    alices = taken.json()["id"]
    response = await client.delete(
        f"/api/v1/users/bob/push-subscriptions/{alices}", headers=auth("bob")
    )
    assert response.status_code == 404


async def test_malformed_subscriptions_are_422_naming_the_field(
    client: httpx.AsyncClient, auth: Any, alice: None
) -> None:
    for body, where in (
        ({k: v for k, v in browser().items() if k != "keys"}, ["body", "keys"]),
        (browser(keys={"p256dh": "not base64!", "auth": KEYS["auth"]}), ["body", "keys", "p256dh"]),
        (browser(keys={"p256dh": "A" * 87, "auth": KEYS["auth"]}), ["body", "keys", "p256dh"]),
        (browser(keys={"p256dh": KEYS["p256dh"], "auth": "AAAA"}), ["body", "keys", "auth"]),
        (browser(device=""), ["body", "device"]),
        (browser(device="a\nb"), ["body", "device"]),
        (browser("ftp://push.example.org/x"), ["body", "endpoint"]),
        (browser("https://"), ["body", "endpoint"]),
    ):
        response = await client.post(SUBSCRIPTIONS, json=body, headers=auth("alice"))
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["loc"] == where, response.text
    assert (await client.get(SUBSCRIPTIONS, headers=auth("alice"))).json() == []


PRIVATE_ENDPOINTS = [
    "https://127.0.0.1/push/x",
    "https://10.1.2.3/push/x",
    "https://192.168.0.1:8443/push/x",
    "https://100.64.0.1/push/x",  # shared address space (carrier-grade NAT)
    "https://169.254.169.254/latest/meta-data",  # a cloud's metadata service
    "https://0.0.0.0/push/x",
    "https://240.0.0.1/push/x",  # reserved
    "https://[::1]/push/x",
    "https://[fd00::1]/push/x",
    "https://[fe80::1]/push/x",
    "https://[::ffff:127.0.0.1]/push/x",
    "https://localhost:8443/push/x",  # a name that resolves only to loopback addresses
    "https://2130706433/push/x",  # 127.0.0.1 written as a number, which resolvers accept
]


@pytest.mark.parametrize("endpoint", PRIVATE_ENDPOINTS)
async def test_an_endpoint_on_a_private_host_is_refused(
    client: httpx.AsyncClient, auth: Any, alice: None, endpoint: str
) -> None:
    """The web sender would POST there: a user could make the server call its own network."""
    response = await client.post(SUBSCRIPTIONS, json=browser(endpoint), headers=auth("alice"))
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "endpoint"]
    assert error["msg"].startswith("the endpoint must be on a public host: ")
    assert (await client.get(SUBSCRIPTIONS, headers=auth("alice"))).json() == []


async def test_an_endpoint_on_a_public_address_is_kept(
    client: httpx.AsyncClient, auth: Any, alice: None
) -> None:
    endpoint = "https://93.184.215.14/push/abc"
    response = await client.post(SUBSCRIPTIONS, json=browser(endpoint), headers=auth("alice"))
    assert response.status_code == 201, response.text


async def test_private_hosts_are_kept_when_the_setting_allows_them(
    make_app: Any, api_settings: Settings, auth: Any, alice: None
) -> None:
    """web.push_allow_private_hosts: for a push-service stand-in on a development machine."""
    web = api_settings.web.model_copy(update={"push_allow_private_hosts": True})
    app = await make_app(api_settings.model_copy(update={"web": web}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        for n, endpoint in enumerate(PRIVATE_ENDPOINTS):
            body = browser(endpoint, device=f"device {n}")
            response = await http.post(SUBSCRIPTIONS, json=body, headers=auth("alice"))
            assert response.status_code == 201, (endpoint, response.text)

"""Every key round-trips through GET /audit/{key}, and no path or query string gets a 500.

Properties over generated input (hypothesis), through chalice.test.Client against moto: the
client hands the path over percent-encoded, as API Gateway does.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import warnings
from collections import Counter
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Stack
from tests.integration.test_history_api import created_record

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")

# one moto stack serves every example of a test: keys differ, and repeats are counted
SHARED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

keys = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=700).filter(
    lambda key: len(key.encode()) <= 2048
)


def get(client: Client, path: str) -> tuple[int, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = client.http.get(path)
    return response.status_code, json.loads(response.body)


@pytest.fixture
def written() -> Counter[str]:
    """How often each key was created in the stack the examples of one test share."""
    return Counter()


@SHARED
@given(key=st.one_of(keys, st.sampled_from(["/", "%", "+", " ", "%2F", "a/b%c+d e", "é" * 1024, "x" * 2048])))
def test_every_key_comes_back_with_its_own_history(
    stack: Stack, client: Client, written: Counter[str], key: str
) -> None:
    # GIVEN the key was created (once more each time hypothesis repeats it)
    written[key] += 1
    number = sum(written.values())
    event = {"Records": [created_record(key, f"event-{number}", str(number))]}
    assert client.lambda_.invoke("audit_producer", event).payload == {"batchItemFailures": []}
    # WHEN its history is read through the percent-encoded path
    status, body = get(client, "/audit/" + urllib.parse.quote(key, safe="") + "?limit=1000")
    # THEN every entry is of that key, and all of them are there
    assert status == 200, body
    assert [entry["itemKey"] for entry in body["entries"]] == [key] * written[key]


# what a raw path segment can hold: not the URL's structure ("/", "?", "#", and ";", which Chalice's
# local gateway reads as the start of path parameters), nor control characters, which a request
# line cannot carry raw (urlparse drops tab, CR and LF); keys holding any of them travel
# percent-encoded, as the round-trip property above sends every key
segments = st.text(
    alphabet=st.characters(exclude_characters="/?#;", exclude_categories=["Cc"]), min_size=1, max_size=60
)
query_values = st.one_of(st.text(max_size=40), st.integers(-(10**6), 10**6).map(str), st.just(""))


@SHARED
@given(
    segment=st.one_of(segments, segments.map(lambda s: s.replace("%", "%%")), st.just("%"), st.just("%E2%82")),
    query=st.dictionaries(st.sampled_from(["limit", "next", "other", ""]), query_values, max_size=3),
)
def test_no_path_or_query_string_gets_a_500(stack: Stack, client: Client, segment: str, query: dict[str, str]) -> None:
    path = "/audit/" + segment + ("?" + urllib.parse.urlencode(query) if query else "")
    status, body = get(client, path)
    assert status in (200, 400), (path, status, body)
    if status == 400:
        assert body["Message"] and "Traceback" not in body["Message"]


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=30,
)
tokens = st.one_of(
    json_values.map(lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).decode()),
    st.lists(st.text(max_size=30), min_size=1, max_size=7).map(
        lambda fields: ".".join(base64.urlsafe_b64encode(f.encode("utf-8", "surrogatepass")).decode() for f in fields)
    ),
    st.text(max_size=100),
)


@SHARED
@given(token=tokens)
def test_no_next_token_gets_a_500_or_another_keys_entries(stack: Stack, client: Client, token: str) -> None:
    status, body = get(client, "/audit/K?" + urllib.parse.urlencode({"next": token}))
    assert status in (200, 400), (token, status, body)
    assert status == 400 or body["entries"] == []  # K has no history: a token can show nothing else

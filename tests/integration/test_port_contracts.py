"""One contract per port beside the Audit repository's: AuditActors, the notifier and the dead
letters, each run against its in-memory fake (which the unit tests use) and its AWS adapter (moto)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from chalicelib.actors.cloudtrail import Call
from chalicelib.actors.repository import ActorRepository, DynamoDBActorRepository
from chalicelib.audit.dead_letters import DeadLetters, SqsDeadLetters
from chalicelib.audit.notifications import Notifier, SnsNotifier
from chalicelib.audit.plan import Poison, plan_batch
from infra.tables import actors_table
from tests.conftest import REGION
from tests.fakes import InMemoryActorRepository, InMemoryDeadLetters, InMemoryNotifier
from tests.integration.test_dead_letters import dead_letters
from tests.integration.test_notifications import Topic
from tests.records import created, poison


def call(key: str, second: int, event_id: str, arn: str = "arn:aws:iam::111122223333:user/alice") -> Call:
    return Call(key, f"2024-09-11T09:02:{second:02d}Z", event_id, arn, "IAMUser", "PutItem", "Configuration")


class ActorRepositoryContract:
    @pytest.fixture
    def actors(self) -> Iterator[ActorRepository]:
        raise NotImplementedError

    def test_calls_come_back_by_key_within_the_window_both_ends_included(self, actors: ActorRepository) -> None:
        assert actors.record([call("K", s, f"e{s}") for s in (10, 20, 30, 40)] + [call("OTHER", 20, "o")]) == []
        found = actors.calls("Configuration", "K", "2024-09-11T09:02:20Z", "2024-09-11T09:02:30Z")
        assert [c.event_id for c in found] == ["e20", "e30"]
        assert found[0] == call("K", 20, "e20")

    def test_a_call_recorded_again_is_kept_once(self, actors: ActorRepository) -> None:
        for _ in range(3):
            actors.record([call("K", 1, "same"), call("K", 1, "same")])
        assert len(actors.calls("Configuration", "K", "2024-09-11T09:02:00Z", "2024-09-11T09:02:59Z")) == 1

    def test_many_calls_are_all_kept(self, actors: ActorRepository) -> None:
        actors.record([call(f"K{n % 3}", n % 60, f"e{n}") for n in range(60)])  # three groups of 25 and more
        assert len(actors.calls("Configuration", "K0", "2024-09-11T09:02:00Z", "2024-09-11T09:02:59Z")) == 20


class TestInMemoryActors(ActorRepositoryContract):
    @pytest.fixture
    def actors(self) -> Iterator[ActorRepository]:
        yield InMemoryActorRepository()


class TestDynamoDBActors(ActorRepositoryContract):
    @pytest.fixture
    def actors(self, dynamodb: Any) -> Iterator[ActorRepository]:
        dynamodb.create_table(**actors_table("AuditActors"))
        yield DynamoDBActorRepository(dynamodb, "AuditActors")


class NotifierContract:
    """``published()`` is what subscribers received, as PublishBatch request entries would carry it."""

    published: Callable[[], list[dict[str, Any]]]

    @pytest.fixture
    def notifier(self) -> Iterator[Notifier]:
        raise NotImplementedError

    def test_every_entry_is_published_with_its_key_and_kind(self, notifier: Notifier) -> None:
        entries = plan_batch({"Records": [created(f"K{n}", str(100 + n)) for n in range(23)]}).entries
        result = notifier.publish(entries)
        assert result.unpublished == set() and result.published == 23
        received = self.published()
        assert sorted(m["itemKey"] for m in received) == sorted(f"K{n}" for n in range(23))
        assert {m["changeKind"] for m in received} == {"created"}
        assert {json.loads(m["body"])["id"] for m in received} == {e["id"]["S"] for e in entries}


class TestInMemoryNotifier(NotifierContract):
    @pytest.fixture
    def notifier(self) -> Iterator[Notifier]:
        fake = InMemoryNotifier()
        self.published = lambda: [
            {"itemKey": m["MessageAttributes"]["itemKey"]["StringValue"],
             "changeKind": m["MessageAttributes"]["changeKind"]["StringValue"], "body": m["Message"]}
            for m in fake.messages
        ]  # fmt: skip
        yield fake


class TestSnsNotifier(NotifierContract):
    @pytest.fixture
    def notifier(self, aws: None) -> Iterator[Notifier]:
        topic = Topic()
        queue = topic.subscribe("everything")
        self.published = lambda: [
            {"itemKey": m["MessageAttributes"]["itemKey"]["StringValue"],
             "changeKind": m["MessageAttributes"]["changeKind"]["StringValue"], "body": m["Body"]}
            for m in topic.received(queue)
        ]  # fmt: skip
        yield SnsNotifier(boto3.client("sns", region_name=REGION), topic.arn)


class DeadLettersContract:
    """``letters()`` is what the queue holds: the reason, the eventID, the sequence number, the record."""

    letters: Callable[[], list[dict[str, Any]]]

    @pytest.fixture
    def dead(self) -> Iterator[DeadLetters]:
        raise NotImplementedError

    def test_every_poison_record_is_sent_with_its_reason_and_record(self, dead: DeadLetters) -> None:
        records = [poison(str(100 + n)) for n in range(13)]
        sent = [Poison(f"why {n}", r, r["eventID"], r["dynamodb"]["SequenceNumber"]) for n, r in enumerate(records)]
        assert dead.enabled and dead.send(sent) == []
        letters = sorted(self.letters(), key=lambda letter: int(letter["sequenceNumber"]))
        assert [letter["reason"] for letter in letters] == [f"why {n}" for n in range(13)]
        assert [letter["record"] for letter in letters] == records


class TestInMemoryDeadLetters(DeadLettersContract):
    @pytest.fixture
    def dead(self) -> Iterator[DeadLetters]:
        fake = InMemoryDeadLetters()
        self.letters = lambda: fake.letters
        yield fake


class TestSqsDeadLetters(DeadLettersContract):
    @pytest.fixture
    def dead(self, aws: None) -> Iterator[DeadLetters]:
        url = str(boto3.client("sqs", region_name=REGION).create_queue(QueueName="dlq")["QueueUrl"])
        self.letters = lambda: dead_letters(url)
        yield SqsDeadLetters(boto3.client("sqs", region_name=REGION), url)

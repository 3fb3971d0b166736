"""A topic's consumer group as Kafka's coordinator describes it: which worker owns which partitions."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

from streams.worker import group_id


@dataclass(frozen=True)
class Members:
    """The group's members that subscribe to one topic, with the partitions of it each owns."""

    stable: bool
    owned: dict[str, frozenset[int]]

    def spread(self, count: int, partitions: int) -> bool:
        """Whether `count` members each own some partitions, none twice, all of them together."""
        sets = list(self.owned.values())
        return (
            self.stable
            and len(sets) == count
            and all(sets)
            and sum(len(s) for s in sets) == partitions
            and frozenset().union(*sets) == frozenset(range(partitions))
        )


def describe(servers: str, topic: str) -> Members:
    """The topic's consumer group (streams.worker.group_id) as the broker's coordinator describes
    it, counting the members subscribed to `topic`."""

    async def fetch() -> Members:
        admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=10_000)
        await admin.start()
        try:
            (response,) = await admin.describe_consumer_groups([group_id(topic)])
        finally:
            await admin.close()
        (group,) = response.to_object()["groups"]
        owned = {}
        for member in group["members"]:
            metadata = ConsumerProtocolMemberMetadata.decode(member["member_metadata"])
            if topic not in metadata.subscription:
                continue
            assignment = member["member_assignment"]
            partitions: set[int] = set()
            if assignment:
                for name, numbers in ConsumerProtocolMemberAssignment.decode(assignment).assignment:
                    if name == topic:
                        partitions.update(numbers)
            owned[member["member_id"]] = frozenset(partitions)
        return Members(group["state"] == "Stable", owned)

    return asyncio.run(asyncio.wait_for(fetch(), 30))

"""Demo data iot-sync owns: customers (in good standing and not), their services, personnel.

Stations and batteries are not seeded here: they come from ARM through `SyncArmInventory`.
Seeding is idempotent: rows that exist are left as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from iot_sync.adapters.db import tables as t
from iot_sync.adapters.db._shared import aware_now, insert_for
from iot_sync.adapters.db.customers import customer_to_row
from iot_sync.adapters.db.people import person_to_row
from iot_sync.domain.customer import Customer, Plan, Standing
from iot_sync.domain.personnel import Person, PersonnelRole
from iot_sync.domain.service import ServiceState

STANDARD_MONTHLY = Plan("standard-monthly", battery_class="STANDARD", swap_quota=30)
HIGH_CAPACITY_MONTHLY = Plan("high-capacity-monthly", battery_class="HIGH_CAPACITY", swap_quota=60)
STARTER = Plan("starter", battery_class="STANDARD", swap_quota=1)


@dataclass(frozen=True, slots=True)
class SeedCustomer:
    customer: Customer
    service_state: ServiceState


_S, _A = ServiceState.SUSPENDED, ServiceState.ACTIVE
DEMO_CUSTOMERS: tuple[SeedCustomer, ...] = (
    SeedCustomer(Customer("CUST-0001", "Amina Odhiambo", Standing.GOOD, STANDARD_MONTHLY), _A),
    SeedCustomer(Customer("CUST-0002", "Brian Mwangi", Standing.GOOD, STANDARD_MONTHLY), _A),
    SeedCustomer(Customer("CUST-0003", "Chloe Achieng", Standing.GOOD, HIGH_CAPACITY_MONTHLY), _A),
    SeedCustomer(Customer("CUST-0004", "David Kiprop", Standing.OVERDUE, STANDARD_MONTHLY), _A),
    SeedCustomer(Customer("CUST-0005", "Esther Wanjiru", Standing.BLOCKED, STANDARD_MONTHLY), _A),
    SeedCustomer(Customer("CUST-0006", "Felix Otieno", Standing.GOOD, STANDARD_MONTHLY), _S),
    SeedCustomer(Customer("CUST-0007", "Grace Njeri", Standing.GOOD, STARTER), _A),
    SeedCustomer(
        Customer("CUST-0008", "Hassan Ali", Standing.GOOD, STANDARD_MONTHLY),
        ServiceState.AWAITING_DEPOSIT,
    ),
)

DEMO_PERSONNEL: tuple[Person, ...] = (
    Person("TECH-001", "Ivy Technician", PersonnelRole.TECHNICIAN, frozenset({"region-1"})),
    Person("AGENT-001", "Jack Field", PersonnelRole.FIELD_AGENT, frozenset({"region-1"})),
    Person("AGENT-002", "Kate Field", PersonnelRole.FIELD_AGENT, frozenset({"region-2"})),
    Person(
        "SUP-001", "Liam Supervisor", PersonnelRole.SUPERVISOR, frozenset({"region-1", "region-2"})
    ),
    Person(
        "TECH-002", "Mia Station", PersonnelRole.TECHNICIAN, frozenset(), frozenset({"ST-0001"})
    ),
)


def service_id_for(customer_id: str) -> str:
    return "SVC-" + customer_id.removeprefix("CUST-")


def seed(
    engine: Engine,
    *,
    customers: Sequence[SeedCustomer] = DEMO_CUSTOMERS,
    personnel: Sequence[Person] = DEMO_PERSONNEL,
) -> None:
    now = aware_now()
    with engine.begin() as conn:
        if customers:
            conn.execute(
                insert_for(conn, t.customers).on_conflict_do_nothing(
                    index_elements=[t.customers.c.customer_id]
                ),
                [customer_to_row(c.customer) for c in customers],
            )
            conn.execute(
                insert_for(conn, t.services).on_conflict_do_nothing(
                    index_elements=[t.services.c.service_id]
                ),
                [
                    {
                        "service_id": service_id_for(c.customer.customer_id),
                        "customer_id": c.customer.customer_id,
                        "state": c.service_state.value,
                        "battery_id": None,
                        "swaps_used": 0,
                        "period_started_at": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for c in customers
                ],
            )
        if personnel:
            conn.execute(
                insert_for(conn, t.personnel).on_conflict_do_nothing(
                    index_elements=[t.personnel.c.person_id]
                ),
                [person_to_row(p) for p in personnel],
            )

"""Property on the real database: random receipts, issues, transfers, shipments, cycle counts and reversals through the
warehouse services leave the cached balances equal to the ledger and equal to the pure reference ledger,
and never negative; a refused operation changes nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy.orm import Session

from mes_lite.db import make_engine, session_factory
from mes_lite.inventory import master_data, operations
from mes_lite.inventory.ledger import Actor, post_move, reconcile_balances, reverse_move
from mes_lite.inventory.models import Location, Lot, SalesOrder, Shipment
from mes_lite.inventory.stock import BalanceKey, Ledger, MaterialPolicy, Move, MoveKind
from mes_lite.models import Product, WorkOrder
from mes_lite.services.errors import ServiceError
from tests.integration.test_inventory_api import plant

BINS = ("W/Z/1", "W/Z/2")
LOTS = ("L1", "L2")
ACTOR = Actor("prop")
quantities = st.integers(1, 12).map(D)


def run_machine(url: str) -> None:
    engine = make_engine(url)
    sessions = session_factory(engine)
    with sessions() as session:
        plant(session)
        for code, kind, parent in (
            ("W", "warehouse", None),
            ("W/Z", "zone", "W"),
            ("W/Z/1", "bin", "W/Z"),
            ("W/Z/2", "bin", "W/Z"),
        ):
            master_data.create_location(session, code=code, kind=kind, parent_code=parent)
        session.commit()
    example = itertools.count()

    class ServiceLedger(RuleBasedStateMachine):
        """Each example gets its own material so examples share the database but not their stock."""

        @initialize()
        def new_material(self) -> None:
            self.session: Session = sessions()
            self.material = f"m{next(example)}"
            master_data.upsert_material(self.session, code=self.material, unit="pcs")
            product = self.session.query(Product).filter_by(code=self.material).one()
            self.session.add(
                WorkOrder(number=f"WO-{self.material}", product_id=product.id, work_center_id=1, planned_qty=1)
            )
            self.session.commit()
            order = SalesOrder(number=f"SO-{self.material}", customer="c", ship_to="", created_at_ns=0)
            self.session.add(order)
            self.session.flush()
            self.shipment = Shipment(
                number=f"SH-{self.material}",
                sales_order_id=order.id,
                dispatch_location_id=self.session.query(Location).filter_by(code=BINS[0]).one().id,
                created_at_ns=0,
                created_by="prop",
            )
            self.session.add(self.shipment)
            self.session.commit()
            self.model = Ledger({self.material: MaterialPolicy(self.material, "pcs")})
            self.move_ids: list[tuple[int, int]] = []  # (database move id, model move id)

        def lot(self, lot: str) -> str:
            return f"{self.material}-{lot}"

        def apply(self, service: object, model_move: Move | None, reverse_of: int | None = None) -> None:
            model_error = db_error = None
            try:
                recorded = (
                    self.model.reverse(reverse_of, who="prop", reason="fix")
                    if reverse_of
                    else self.model.post(model_move)
                )  # type: ignore[arg-type]
            except ValueError as e:
                model_error = e
            try:
                moves = service()  # type: ignore[operator]
                self.session.commit()
            except ServiceError as e:
                self.session.rollback()
                db_error = e
            assert (model_error is None) == (db_error is None), f"model: {model_error!r}, database: {db_error!r}"
            if db_error is None:
                db_moves = moves if isinstance(moves, list) else [moves]
                assert len(db_moves) == 1
                self.move_ids.append((db_moves[0].id, recorded.move_id))

        @rule(lot=st.sampled_from(LOTS), to=st.sampled_from(BINS), qty=quantities)
        def receive(self, lot: str, to: str, qty: D) -> None:
            self.apply(
                lambda: operations.receive(
                    self.session, material=self.material, quantity=qty, location=to, lot=self.lot(lot), actor=ACTOR
                ),
                Move(MoveKind.RECEIPT, self.material, self.lot(lot), qty, to_location=to, who="prop"),
            )

        @rule(lot=st.sampled_from(LOTS), source=st.sampled_from(BINS), qty=quantities)
        def issue(self, lot: str, source: str, qty: D) -> None:
            if not self.session.query(Lot).filter_by(code=self.lot(lot)).first():
                return
            self.apply(
                lambda: operations.issue_to_work_order(
                    self.session,
                    work_order=f"WO-{self.material}",
                    material=self.material,
                    quantity=qty,
                    location=source,
                    lot=self.lot(lot),
                    actor=ACTOR,
                ),
                Move(
                    MoveKind.ISSUE, self.material, self.lot(lot), qty, from_location=source, work_order="wo", who="prop"
                ),
            )

        @rule(lot=st.sampled_from(LOTS), source=st.sampled_from(BINS), qty=quantities)
        def ship(self, lot: str, source: str, qty: D) -> None:
            found = self.session.query(Lot).filter_by(code=self.lot(lot)).first()
            if found is None:
                return
            location = self.session.query(Location).filter_by(code=source).one()
            self.apply(
                lambda: post_move(
                    self.session,
                    kind=MoveKind.SHIPMENT,
                    product_id=found.product_id,
                    lot_id=found.id,
                    quantity=qty,
                    actor=ACTOR,
                    reason="ship",
                    from_location_id=location.id,
                    shipment_id=self.shipment.id,
                ),
                Move(
                    MoveKind.SHIPMENT,
                    self.material,
                    self.lot(lot),
                    qty,
                    from_location=source,
                    shipment="SH",
                    who="prop",
                ),
            )

        @rule(lot=st.sampled_from(LOTS), qty=quantities, forward=st.booleans())
        def transfer(self, lot: str, qty: D, forward: bool) -> None:
            if not self.session.query(Lot).filter_by(code=self.lot(lot)).first():
                return
            a, b = BINS if forward else BINS[::-1]
            self.apply(
                lambda: operations.transfer(
                    self.session,
                    material=self.material,
                    lot=self.lot(lot),
                    quantity=qty,
                    from_location=a,
                    to_location=b,
                    actor=ACTOR,
                ),
                Move(MoveKind.TRANSFER, self.material, self.lot(lot), qty, from_location=a, to_location=b, who="prop"),
            )

        @rule(lot=st.sampled_from(LOTS), where=st.sampled_from(BINS), counted=st.integers(0, 15).map(D))
        def count(self, lot: str, where: str, counted: D) -> None:
            current = self.model.on_hand(self.material, where, self.lot(lot))
            if counted == current:
                return
            side = {"to_location": where} if counted > current else {"from_location": where}
            self.apply(
                lambda: operations.count(
                    self.session,
                    material=self.material,
                    lot=self.lot(lot),
                    location=where,
                    counted=counted,
                    actor=ACTOR,
                    reason="count",
                ),
                Move(
                    MoveKind.ADJUSTMENT,
                    self.material,
                    self.lot(lot),
                    abs(counted - current),
                    reason="count",
                    who="prop",
                    **side,
                ),
            )

        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            if not self.move_ids:
                return
            db_id, model_id = data.draw(st.sampled_from(self.move_ids))
            self.apply(lambda: reverse_move(self.session, db_id, actor=ACTOR, reason="fix"), None, reverse_of=model_id)

        @invariant()
        def database_agrees_with_the_model_and_its_own_ledger(self) -> None:
            if not hasattr(self, "model"):
                return
            rows = operations.on_hand(self.session, material=self.material)
            assert {BalanceKey(r.material, r.location, r.lot): r.quantity for r in rows} == self.model.balances
            assert all(r.quantity >= 0 for r in rows)

        def teardown(self) -> None:
            if hasattr(self, "session"):
                assert reconcile_balances(self.session) == []
                self.session.close()

    run_state_machine_as_test(ServiceLedger, settings=settings(max_examples=6, stateful_step_count=12, deadline=None))
    engine.dispose()


def test_random_warehouse_operations_keep_the_database_equal_to_the_pure_ledger(mes_db_url: str) -> None:
    run_machine(mes_db_url)

"""Lesson 05 (trip booking saga): insure the trip, and undo it all."""

from __future__ import annotations

from typing import Any

from kernel_ext.exercises import Check, exercise

UNDO = {"reserve_car": "cancel_car", "book_hotel": "cancel_hotel", "buy_insurance": "refund_insurance"}


@exercise(
    "insure the trip, and undo it all",
    concept="sagas: a compensation per completed step, run last first, then fail",
    hint="Use a Saga: after each step that succeeded, saga.add_compensation(undo, reservation, start_to_close_timeout=...); "
    "in `except ActivityError:` await saga.compensate(), then raise.",
)
async def insured_trip(c: Check) -> None:
    booked: Any = c.namespace.get("booked")
    gate: Any = c.namespace.get("gate")
    if gate is not None:
        gate.set()  # part 3 may have left cancel_car waiting
    run = await c.run("InsuredTrip", {"traveller": "grace", "destination": "Porto"}, task_queue="trips",
                      workflow_id="insured-trip", timeout=5)
    if run.status == "TASK_FAILED":
        c.require(False, "", f"insured-trip: {run.problem}")
    done = [a for a in run.activity_types() if a in UNDO]
    undone = [a for a in run.activity_types() if a in UNDO.values()]
    expected = [UNDO[a] for a in reversed(done)]
    left = sorted(k for k in (booked or {}) if k.endswith("-grace"))
    c.require(
        bool(undone),
        "after the payment failed, compensations ran",
        f"after the payment failed, nothing was undone: still booked {left}",
    )
    c.expect(
        undone == expected,
        f"every completed step was undone, last first: {', '.join(undone)}",
        f"the compensations that ran were {undone}, expected {expected} (each completed step, last first)",
        hint="Add each compensation right after its step succeeds; compensate() runs them last first.",
    )
    c.expect(not left, "nothing is left booked", f"still booked after the saga: {left}")
    c.expect(
        run.status == "FAILED",
        "and the run failed with the card's error",
        f"the run ended {run.status}: after compensating, raise again so that the caller learns the trip is not booked",
    )

"""S3, tracking and recovery: declare a loss only on evidence, and start its settlement."""

from __future__ import annotations

from dataclasses import dataclass

from iot_sync.app.effects import Effects
from iot_sync.app.ports import Clock, UnitOfWorkFactory
from iot_sync.domain.asset import Asset, AssetMove
from iot_sync.domain.evidence import LossEvidence, LossPolicy, loss_evidence
from iot_sync.domain.rejection import Rejection
from iot_sync.domain.service import ServiceInput, ServiceState


def declare_loss(
    fx: Effects, asset: Asset, evidence: LossEvidence, *, cause: str, actor: str | None = None
) -> Asset | Rejection:
    """The battery becomes LOST; its holder's service BATTERY_LOST; settlement starts."""
    lost = fx.move_asset(
        asset,
        asset.declare_lost(at=fx.now),
        AssetMove.DECLARE_LOST,
        cause=cause,
        reason=f"{evidence.kind}: {evidence.detail}",
        actor=actor,
    )
    if isinstance(lost, Rejection) or asset.holder is None:
        return lost
    service = fx.uow.services.for_customers([asset.holder]).get(asset.holder)
    if service is None or service.state is not ServiceState.BATTERY_ISSUED:
        return lost
    after = fx.apply_to_service(
        service, ServiceInput.BATTERY_LOST, cause=cause, battery_id=asset.asset_id, actor=actor
    )
    if not isinstance(after, Rejection):
        fx.start_settlement(after, asset, evidence)
        fx.notify(
            after.customer_id,
            "battery_lost",
            battery_id=asset.asset_id,
            detail=evidence.detail,
            evidence=evidence.kind.value,
        )
    return lost


@dataclass(frozen=True, slots=True)
class DeclaredLoss:
    asset_id: str
    evidence: LossEvidence


class LossDetection:
    """The periodic job over ISSUED batteries: silence and dwell outside the allowed area."""

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        policy: LossPolicy,
        batch_size: int = 200,
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._policy = policy
        self._batch_size = batch_size

    def run(self) -> list[DeclaredLoss]:
        now = self._clock.now()
        declared: list[DeclaredLoss] = []
        with self._uow_factory() as uow:
            fx = Effects(uow, now)
            candidates = uow.assets.loss_candidates(
                silent_before=now - self._policy.silence_timeout,
                outside_before=now - self._policy.dwell,
                limit=self._batch_size,
            )
            for asset in candidates:
                evidence = loss_evidence(asset, self._policy, now)
                if evidence is None:
                    continue
                result = declare_loss(fx, asset, evidence, cause=f"loss-detection:{evidence.kind}")
                if not isinstance(result, Rejection):
                    declared.append(DeclaredLoss(asset.asset_id, evidence))
            fx.flush()
            uow.commit()
        return declared

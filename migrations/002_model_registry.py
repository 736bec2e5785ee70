"""Step 2: ModelRegistry owned by the timelock, with the genesis model as snapshot 1 (epoch 0).
Genesis experts' royalties are credited to the timelock (the treasury governance controls)."""

from runner import B, MigrationContext


def run(ctx: MigrationContext) -> dict[str, str]:
    p = ctx.params
    timelock = ctx.addresses["PoAITimelock"]
    registry = ctx.deploy(
        B.ModelRegistry,
        timelock,
        p.layers,
        p.experts_per_layer,
        p.epoch_blocks,
        p.genesis_trunk_hash,
        list(p.genesis_expert_hashes),
        list(p.genesis_expert_sizes),
        timelock,
    )
    return {"ModelRegistry": registry}

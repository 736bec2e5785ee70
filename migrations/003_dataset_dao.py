"""Step 3: DatasetDAO owned by the timelock, with the genesis dataset (public key) active."""

from runner import B, MigrationContext


def run(ctx: MigrationContext) -> dict[str, str]:
    p = ctx.params
    dao = ctx.deploy(
        B.DatasetDAO,
        ctx.addresses["PoAITimelock"],
        p.epoch_blocks,
        p.genesis_dataset_hash,
        p.genesis_dataset_records,
        p.genesis_dataset_key,
    )
    return {"DatasetDAO": dao}

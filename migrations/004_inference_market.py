"""Step 4: InferenceMarket, then made StakedPOAI's one locker/slasher (set once)."""

from runner import B, MigrationContext


def run(ctx: MigrationContext) -> dict[str, str]:
    p = ctx.params
    staked = ctx.addresses["StakedPOAI"]
    market = ctx.deploy(
        B.InferenceMarket,
        staked,
        ctx.addresses["ModelRegistry"],
        p.min_worker_stake,
        p.challenge_bond,
        p.challenge_window_blocks,
        p.royalty_bps,
        p.max_job_blocks,
    )
    ctx.call(B.StakedPOAI(ctx.w3, staked).setMarket(market))
    return {"InferenceMarket": market}

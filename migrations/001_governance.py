"""Step 1: StakedPOAI, the timelock and the Governor; the Governor proposes and cancels, anyone
executes, and the deployer gives up the timelock's admin role."""

from runner import B, MigrationContext


def run(ctx: MigrationContext) -> dict[str, str]:
    p = ctx.params
    me = ctx.account.address
    staked = ctx.deploy(B.StakedPOAI, p.unbonding_blocks)
    timelock = ctx.deploy(
        B.PoAITimelock,
        p.timelock_delay_seconds,
        [],
        ["0x0000000000000000000000000000000000000000"],
        me,
    )
    governor = ctx.deploy(
        B.PoAIGovernor,
        staked,
        timelock,
        p.voting_delay_blocks,
        p.voting_period_blocks,
        p.proposal_threshold,
        p.quorum_percent,
    )
    tl = B.PoAITimelock(ctx.w3, timelock)
    ctx.call(tl.grantRole(tl.PROPOSER_ROLE(), governor))
    ctx.call(tl.grantRole(tl.CANCELLER_ROLE(), governor))
    ctx.call(tl.renounceRole(tl.DEFAULT_ADMIN_ROLE(), me))
    return {"StakedPOAI": staked, "PoAITimelock": timelock, "PoAIGovernor": governor}

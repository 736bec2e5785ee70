import { expect } from "chai";
import {
  ethers, networkHelpers, deploySystem, VOTING_DELAY, VOTING_PERIOD, TIMELOCK_DELAY, QUORUM_PERCENT,
  h, mineToEpoch,
  registerWithPayload,
} from "./helpers/setup.js";

const E = (n) => ethers.parseEther(String(n));
const P = { Pending: 0n, Active: 1n, Defeated: 3n, Succeeded: 4n, Queued: 5n, Executed: 7n };

describe("Governance (StakedPOAI + PoAIGovernor + PoAITimelock)", function () {
  async function fixture() {
    const s = await deploySystem();
    await registerWithPayload(s.registry, s.erin, "layer0.expert0", 0, 0, ethers.toUtf8Bytes("erin-l0e0"), [1]);
    await s.registry.connect(s.erin).registerSnapshot(h("trunk-2"), [5, 2, 3, 4]);
    return s;
  }

  async function passProposal(s, voter, targets, calldatas, description) {
    const { governor } = s;
    const values = targets.map(() => 0n);
    const descHash = ethers.id(description);
    await governor.connect(voter).propose(targets, values, calldatas, description);
    const id = await governor.hashProposal(targets, values, calldatas, descHash);
    expect(await governor.state(id)).to.equal(P.Pending);
    await networkHelpers.mine(VOTING_DELAY + 1n);
    expect(await governor.state(id)).to.equal(P.Active);
    await governor.connect(voter).castVote(id, 1);
    await networkHelpers.mine(VOTING_PERIOD);
    expect(await governor.state(id)).to.equal(P.Succeeded);
    await governor.queue(targets, values, calldatas, descHash);
    expect(await governor.state(id)).to.equal(P.Queued);
    await expect(governor.execute(targets, values, calldatas, descHash))
      .to.be.revertedWithCustomError(s.timelock, "TimelockUnexpectedOperationState"); // delay not over
    await networkHelpers.time.increase(TIMELOCK_DELAY);
    await governor.execute(targets, values, calldatas, descHash);
    expect(await governor.state(id)).to.equal(P.Executed);
    return id;
  }

  it("is wired: settings, quorum, roles, ownership", async function () {
    const { governor, timelock, registry, dataset, staked, deployer } = await networkHelpers.loadFixture(fixture);
    expect(await governor.votingDelay()).to.equal(VOTING_DELAY);
    expect(await governor.votingPeriod()).to.equal(VOTING_PERIOD);
    expect(await governor.proposalThreshold()).to.equal(0n);
    expect(await governor["quorumNumerator()"]()).to.equal(QUORUM_PERCENT);
    expect(await governor.timelock()).to.equal(timelock.target);
    expect(await governor.token()).to.equal(staked.target);
    expect(await governor.proposalNeedsQueuing(0)).to.equal(true);
    expect(await registry.owner()).to.equal(timelock.target);
    expect(await dataset.owner()).to.equal(timelock.target);
    expect(await timelock.hasRole(await timelock.PROPOSER_ROLE(), governor)).to.equal(true);
    expect(await timelock.hasRole(await timelock.DEFAULT_ADMIN_ROLE(), deployer)).to.equal(false);
    expect(await timelock.getMinDelay()).to.equal(TIMELOCK_DELAY);
  });

  it("only the timelock schedules snapshots and datasets", async function () {
    const { registry, dataset, alice } = await networkHelpers.loadFixture(fixture);
    await expect(registry.connect(alice).scheduleSnapshot(2, 100)).to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount");
    await expect(dataset.connect(alice).scheduleDataset(h("d"), 1, h("k"), 100))
      .to.be.revertedWithCustomError(dataset, "OwnableUnauthorizedAccount");
  });

  it("full flow: stake → delegate → propose scheduleSnapshot → vote → queue → wait → execute → active", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { staked, registry, alice } = s;
    await staked.connect(alice).deposit({ value: E(100) });
    await staked.connect(alice).delegate(alice.address);
    await networkHelpers.mine(1); // votes are read one block back
    const epoch = (await registry.currentEpoch()) + 3n;
    const call = registry.interface.encodeFunctionData("scheduleSnapshot", [2, epoch]);
    await passProposal(s, alice, [registry.target], [call], "Activate snapshot 2 (better layer0.expert0)");
    expect(await registry.activeSnapshot(epoch - 1n)).to.equal(1n);
    expect(await registry.activeSnapshot(epoch)).to.equal(2n);
    await mineToEpoch(epoch);
    await networkHelpers.mine(1);
    const nowEpoch = await registry.currentEpoch();
    expect(nowEpoch).to.equal(epoch);
    expect(await registry.activeSnapshot(nowEpoch)).to.equal(2n);
    expect(await registry.snapshotExperts(await registry.activeSnapshot(nowEpoch))).to.deep.equal([5n, 2n, 3n, 4n]);
  });

  it("schedules a dataset through governance; the key is revealed at activation", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { staked, dataset, alice, frank } = s;
    await staked.connect(alice).deposit({ value: E(100) });
    await staked.connect(alice).delegate(alice.address);
    await networkHelpers.mine(1);
    const key = h("dataset-2-key");
    const epoch = (await dataset.currentEpoch()) + 3n;
    const call = dataset.interface.encodeFunctionData("scheduleDataset", [h("dataset-2"), 500, ethers.keccak256(key), epoch]);
    await passProposal(s, alice, [dataset.target], [call], "Dataset 2");
    await expect(dataset.connect(frank).revealKey(2, key)).to.be.revertedWithCustomError(dataset, "NotYetActive");
    await mineToEpoch(epoch);
    await dataset.connect(frank).revealKey(2, key);
    const a = await dataset.activeDataset(epoch);
    expect(a.datasetId).to.equal(2n);
    expect(a.key).to.equal(key);
  });

  it("a proposal without quorum is defeated", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { staked, governor, registry, alice, frank } = s;
    await staked.connect(alice).deposit({ value: E(100) });
    await staked.connect(alice).delegate(alice.address);
    await staked.connect(frank).deposit({ value: E(1) });
    await staked.connect(frank).delegate(frank.address);
    await networkHelpers.mine(1);
    const call = registry.interface.encodeFunctionData("scheduleSnapshot", [2, (await registry.currentEpoch()) + 5n]);
    await governor.connect(frank).propose([registry.target], [0], [call], "tiny");
    const id = await governor.hashProposal([registry.target], [0], [call], ethers.id("tiny"));
    await networkHelpers.mine(VOTING_DELAY + 1n);
    await governor.connect(frank).castVote(id, 1); // 1 of 101 < 4%
    await networkHelpers.mine(VOTING_PERIOD);
    expect(await governor.state(id)).to.equal(P.Defeated);
  });

  it("governance withdraws the genesis experts' royalties held for the timelock", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { staked, market, timelock, alice, bob, carol, grace } = s;
    await staked.connect(alice).deposit({ value: E(100) });
    await staked.connect(alice).delegate(alice.address);
    await staked.connect(bob).deposit({ value: E(10) });
    await market.connect(bob).registerWorker();
    await market.connect(carol).postJob(1, "0x41", 8, 0, 1_000_000, 0, (await ethers.provider.getBlockNumber()) + 20, { value: E(1) });
    await market.connect(bob).claimJob(1);
    await market.connect(bob).commitResult(1, "0x0041", [1], [1]);
    await networkHelpers.mine(20);
    await market.finalize(1);
    const owed = await market.pendingOf(timelock);
    expect(owed).to.equal(E(1) / 10n);
    const calls = [
      market.interface.encodeFunctionData("withdraw"),
    ];
    await passProposal(s, alice, [market.target], calls, "collect royalties");
    expect(await ethers.provider.getBalance(timelock)).to.equal(owed);
    expect(grace.address).to.not.equal(timelock.target);
  });
});

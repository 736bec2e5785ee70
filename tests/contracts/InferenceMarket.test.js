import { expect } from "chai";
import {
  ethers, networkHelpers, deploySystem, MIN_STAKE, BOND, CHALLENGE_WINDOW, DISPUTE_PERIOD, MAX_JOB_BLOCKS,
  BURN_ADDRESS, h, blockNumber,
  registerWithPayload,
} from "./helpers/setup.js";

const E = (n) => ethers.parseEther(String(n));
const FEE = E(2);
const S = { None: 0n, Open: 1n, Claimed: 2n, Committed: 3n, Challenged: 4n, Finalized: 5n, Refunded: 6n, Fraud: 7n };

describe("InferenceMarket", function () {
  // bob: worker; carol: buyer; dave: challenger; alice + frank: voting stakers; erin: contributor.
  async function fixture() {
    const s = await deploySystem();
    const { staked, market, registry, alice, bob, frank, erin } = s;
    await staked.connect(bob).deposit({ value: E(30) });
    await staked.connect(alice).deposit({ value: E(100) });
    await staked.connect(alice).delegate(alice.address);
    await staked.connect(frank).deposit({ value: E(40) });
    await staked.connect(frank).delegate(frank.address);
    await market.connect(bob).registerWorker();
    // erin contributes a better layer1.expert1; snapshot 2 uses it
    await registerWithPayload(registry, erin, "layer1.expert1", 1, 1, ethers.toUtf8Bytes("erin-v2"), [4]);
    await registry.connect(erin).registerSnapshot(h("trunk"), [1, 2, 3, 5]);
    return s;
  }

  async function committed(s, experts = [1, 5], counts = [1, 3]) {
    const { market, bob, carol } = s;
    const deadline = (await blockNumber()) + 20n;
    await market.connect(carol).postJob(2, h("input"), deadline, { value: FEE });
    const jobId = await market.jobCount();
    await market.connect(bob).claimJob(jobId);
    await market.connect(bob).commitResult(jobId, h("result"), experts, counts);
    return jobId;
  }

  async function conservation(s) {
    const { market, staked } = s;
    expect(await ethers.provider.getBalance(market)).to.equal((await market.totalEscrow()) + (await market.totalPending()));
    expect(await ethers.provider.getBalance(staked)).to.equal((await staked.totalSupply()) + (await staked.totalUnbonding()));
  }

  async function withdrawAll(market, signers) {
    for (const a of signers) {
      if ((await market.pendingOf(a)) > 0n) await market.connect(a).withdraw();
    }
  }

  it("rejects bad constructor parameters", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const F = await ethers.getContractFactory("InferenceMarket");
    const ok = [s.staked.target, s.registry.target, MIN_STAKE, BOND, 10, 10, 2000, 1000, 100];
    const bad = [
      [0, ethers.ZeroAddress], [1, ethers.ZeroAddress], [2, 0], [3, 0], [4, 0], [5, 0], [6, 0], [6, 10001], [7, 10001], [8, 0],
    ];
    for (const [i, v] of bad) {
      const args = [...ok];
      args[i] = v;
      await expect(F.deploy(...args)).to.be.revertedWithCustomError(s.market, "InvalidParams");
    }
    await F.deploy(...ok);
  });

  it("registers and deregisters workers", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, staked, bob, grace } = s;
    await expect(market.connect(bob).registerWorker()).to.be.revertedWithCustomError(market, "AlreadyRegistered");
    await staked.connect(grace).deposit({ value: E(9) });
    await expect(market.connect(grace).registerWorker())
      .to.be.revertedWithCustomError(market, "InsufficientStake").withArgs(E(9), MIN_STAKE);
    await staked.connect(grace).deposit({ value: E(1) });
    await expect(market.connect(grace).registerWorker()).to.emit(market, "WorkerRegistered").withArgs(grace.address);
    await expect(market.connect(grace).deregisterWorker()).to.emit(market, "WorkerDeregistered").withArgs(grace.address);
    await expect(market.connect(grace).deregisterWorker()).to.be.revertedWithCustomError(market, "NotRegistered");
    await committed(s);
    await expect(market.connect(bob).deregisterWorker()).to.be.revertedWithCustomError(market, "HasOpenJobs");
  });

  it("posts jobs with checks on fee, snapshot and deadline", async function () {
    const { market, carol } = await networkHelpers.loadFixture(fixture);
    const bn = await blockNumber();
    await expect(market.connect(carol).postJob(1, h("i"), bn + 10n)).to.be.revertedWithCustomError(market, "ZeroFee");
    await expect(market.connect(carol).postJob(0, h("i"), bn + 10n, { value: 1 }))
      .to.be.revertedWithCustomError(market, "UnknownSnapshot").withArgs(0);
    await expect(market.connect(carol).postJob(3, h("i"), bn + 10n, { value: 1 }))
      .to.be.revertedWithCustomError(market, "UnknownSnapshot").withArgs(3);
    await expect(market.connect(carol).postJob(1, h("i"), bn + 1n, { value: 1 })).to.be.revertedWithCustomError(market, "BadDeadline");
    await expect(market.connect(carol).postJob(1, h("i"), bn + 2n + MAX_JOB_BLOCKS, { value: 1 }))
      .to.be.revertedWithCustomError(market, "BadDeadline");
    await expect(market.connect(carol).postJob(1, h("i"), bn + 10n, { value: FEE }))
      .to.emit(market, "JobPosted").withArgs(1, carol.address, 1, h("i"), FEE, bn + 10n);
    const j = await market.job(1);
    expect(j.status).to.equal(S.Open);
    expect(await market.totalEscrow()).to.equal(FEE);
    await expect(market.job(2)).to.be.revertedWithCustomError(market, "UnknownJob").withArgs(2);
  });

  it("lets the buyer cancel an open job", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, carol, dave } = s;
    await market.connect(carol).postJob(1, h("i"), (await blockNumber()) + 10n, { value: FEE });
    await expect(market.connect(dave).cancelJob(1)).to.be.revertedWithCustomError(market, "NotBuyer");
    await expect(market.connect(carol).cancelJob(1)).to.emit(market, "JobCancelled").withArgs(1);
    await expect(market.connect(carol).cancelJob(1)).to.be.revertedWithCustomError(market, "WrongStatus").withArgs(S.Refunded);
    expect(await market.pendingOf(carol)).to.equal(FEE);
    await expect(market.connect(carol).withdraw()).to.changeEtherBalances(ethers, [carol, market], [FEE, -FEE]);
    await expect(market.connect(carol).withdraw()).to.be.revertedWithCustomError(market, "NothingToWithdraw");
    await conservation(s);
  });

  it("claims: registered, unbanned, stake available, before the deadline", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, staked, bob, carol, grace } = s;
    const dl = (await blockNumber()) + 10n;
    for (let i = 0; i < 4; i++) await market.connect(carol).postJob(1, h("i"), dl, { value: FEE });
    await expect(market.connect(grace).claimJob(1)).to.be.revertedWithCustomError(market, "NotRegistered");
    await expect(market.connect(bob).claimJob(1)).to.emit(market, "JobClaimed").withArgs(1, bob.address, MIN_STAKE);
    expect(await staked.lockedOf(bob)).to.equal(MIN_STAKE);
    await expect(market.connect(bob).claimJob(1)).to.be.revertedWithCustomError(market, "WrongStatus").withArgs(S.Claimed);
    await market.connect(bob).claimJob(2);
    await market.connect(bob).claimJob(3); // 30 staked = 3 jobs
    await expect(market.connect(bob).claimJob(4))
      .to.be.revertedWithCustomError(staked, "InsufficientUnlocked").withArgs(0, MIN_STAKE);
    await networkHelpers.mineUpTo(dl);
    await expect(market.connect(bob).claimJob(4)).to.be.revertedWithCustomError(market, "DeadlinePassed");
    await expect(market.connect(bob).claimJob(9)).to.be.revertedWithCustomError(market, "UnknownJob");
  });

  it("commits a result with checks on caller, deadline and experts", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, bob, carol, dave } = s;
    const dl = (await blockNumber()) + 20n;
    await market.connect(carol).postJob(2, h("i"), dl, { value: FEE });
    await expect(market.connect(bob).commitResult(1, h("r"), [1], [1]))
      .to.be.revertedWithCustomError(market, "WrongStatus").withArgs(S.Open);
    await market.connect(bob).claimJob(1);
    const c = market.connect(bob);
    await expect(market.connect(dave).commitResult(1, h("r"), [1], [1])).to.be.revertedWithCustomError(market, "NotWorker");
    await expect(c.commitResult(1, ethers.ZeroHash, [1], [1])).to.be.revertedWithCustomError(market, "ZeroResult");
    await expect(c.commitResult(1, h("r"), [], [])).to.be.revertedWithCustomError(market, "BadExperts");
    await expect(c.commitResult(1, h("r"), [1, 2], [1])).to.be.revertedWithCustomError(market, "BadExperts");
    await expect(c.commitResult(1, h("r"), [2, 1], [1, 1])).to.be.revertedWithCustomError(market, "BadExperts");
    await expect(c.commitResult(1, h("r"), [1, 1], [1, 1])).to.be.revertedWithCustomError(market, "BadExperts");
    await expect(c.commitResult(1, h("r"), [1], [0])).to.be.revertedWithCustomError(market, "BadExperts");
    const many = Array.from({ length: 65 }, (_, i) => i + 1);
    await expect(c.commitResult(1, h("r"), many, many)).to.be.revertedWithCustomError(market, "BadExperts");
    await expect(c.commitResult(1, h("r"), [4], [1])) // expert 4 is not in snapshot 2
      .to.be.revertedWithCustomError(market, "ExpertNotInSnapshot").withArgs(4);
    await expect(c.commitResult(1, h("r"), [1, 5], [2, 6]))
      .to.emit(market, "ResultCommitted").withArgs(1, h("r"), [1, 5], [2, 6]);
    const j = await market.job(1);
    expect(j.status).to.equal(S.Committed);
    expect(j.expertIds).to.deep.equal([1n, 5n]);
    // past the deadline a claimed job can no longer be committed
    await market.connect(carol).postJob(2, h("i"), (await blockNumber()) + 3n, { value: FEE });
    await market.connect(bob).claimJob(2);
    await networkHelpers.mine(3);
    await expect(c.commitResult(2, h("r"), [1], [1])).to.be.revertedWithCustomError(market, "DeadlinePassed");
  });

  it("finalizes after the window: worker paid, royalty split by use, dust to the worker", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, staked, timelock, bob, erin } = s;
    const id = await committed(s, [1, 5], [1, 2]); // expert 1 (timelock, genesis) 1 use, expert 5 (erin) 2 uses
    await expect(market.finalize(id)).to.be.revertedWithCustomError(market, "ChallengeWindowOpen");
    await networkHelpers.mine(CHALLENGE_WINDOW);
    const royalty = (FEE * 1000n) / 10000n;
    const toGenesis = royalty / 3n;
    const toErin = (royalty * 2n) / 3n;
    const workerPay = FEE - toGenesis - toErin;
    await expect(market.finalize(id)).to.emit(market, "JobFinalized").withArgs(id, workerPay, toGenesis + toErin);
    expect(await market.pendingOf(bob)).to.equal(workerPay);
    expect(await market.pendingOf(erin)).to.equal(toErin);
    expect(await market.pendingOf(timelock)).to.equal(toGenesis);
    expect(await staked.lockedOf(bob)).to.equal(0n);
    expect((await market.workers(bob)).openJobs).to.equal(0n);
    await expect(market.finalize(id)).to.be.revertedWithCustomError(market, "WrongStatus").withArgs(S.Finalized);
    await expect(market.connect(bob).withdraw()).to.changeEtherBalances(ethers, [bob], [workerPay]);
    await conservation(s);
  });

  it("refunds a job nobody served, unlocking a claimer's stake", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, staked, bob, carol } = s;
    const dl = (await blockNumber()) + 5n;
    await market.connect(carol).postJob(1, h("i"), dl, { value: FEE });
    await market.connect(carol).postJob(1, h("i"), dl, { value: FEE });
    await market.connect(bob).claimJob(2);
    await expect(market.refund(1)).to.be.revertedWithCustomError(market, "DeadlineNotPassed");
    await networkHelpers.mineUpTo(dl);
    await expect(market.refund(1)).to.emit(market, "JobRefunded").withArgs(1, FEE);
    await expect(market.refund(2)).to.emit(market, "JobRefunded").withArgs(2, FEE);
    expect(await staked.lockedOf(bob)).to.equal(0n);
    expect(await market.pendingOf(carol)).to.equal(2n * FEE);
    await expect(market.refund(2)).to.be.revertedWithCustomError(market, "WrongStatus").withArgs(S.Refunded);
    await conservation(s);
  });

  it("challenges: bond exact, within the window, not by the worker", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, bob, dave } = s;
    const id = await committed(s);
    await expect(market.connect(bob).challenge(id, { value: BOND })).to.be.revertedWithCustomError(market, "SelfChallenge");
    await expect(market.connect(dave).challenge(id, { value: BOND - 1n }))
      .to.be.revertedWithCustomError(market, "WrongBond").withArgs(BOND);
    const tx = await market.connect(dave).challenge(id, { value: BOND });
    const bn = BigInt((await tx.wait()).blockNumber);
    await expect(tx).to.emit(market, "Challenged").withArgs(id, dave.address, BOND, bn + DISPUTE_PERIOD);
    const d = await market.disputes(id);
    expect(d.snapshotBlock).to.equal(bn - 1n);
    await expect(market.connect(dave).challenge(id, { value: BOND }))
      .to.be.revertedWithCustomError(market, "WrongStatus").withArgs(S.Challenged);
    await expect(market.finalize(id)).to.be.revertedWithCustomError(market, "WrongStatus");
    const id2 = await committed(s);
    await networkHelpers.mine(CHALLENGE_WINDOW);
    await expect(market.connect(dave).challenge(id2, { value: BOND })).to.be.revertedWithCustomError(market, "ChallengeWindowClosed");
    await conservation(s);
  });

  it("votes: stakers only, once, parties excluded, within the period", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, staked, alice, bob, dave, grace, frank } = s;
    const id = await committed(s);
    await expect(market.connect(alice).voteOnDispute(id, true)).to.be.revertedWithCustomError(market, "WrongStatus");
    await market.connect(dave).challenge(id, { value: BOND });
    await expect(market.connect(alice).voteOnDispute(id, true))
      .to.emit(market, "DisputeVoted").withArgs(id, alice.address, true, E(100));
    await expect(market.connect(alice).voteOnDispute(id, true)).to.be.revertedWithCustomError(market, "AlreadyVoted");
    await expect(market.connect(bob).voteOnDispute(id, false)).to.be.revertedWithCustomError(market, "PartyCannotVote");
    await expect(market.connect(dave).voteOnDispute(id, true)).to.be.revertedWithCustomError(market, "PartyCannotVote");
    // stake delegated after the challenge does not count (no flash voting)
    await staked.connect(grace).deposit({ value: E(50) });
    await staked.connect(grace).delegate(grace.address);
    await expect(market.connect(grace).voteOnDispute(id, false)).to.be.revertedWithCustomError(market, "NoVotingPower");
    await expect(market.resolveDispute(id)).to.be.revertedWithCustomError(market, "VotingOpen");
    await networkHelpers.mine(DISPUTE_PERIOD);
    await expect(market.connect(frank).voteOnDispute(id, false)).to.be.revertedWithCustomError(market, "VotingClosed");
  });

  it("FRAUD: stake slashed 90% burnt / 10% challenger, buyer refunded, bond back, worker banned", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, staked, alice, bob, carol, dave, frank, erin, timelock } = s;
    const marketBefore = await ethers.provider.getBalance(market);
    const id = await committed(s);
    await market.connect(dave).challenge(id, { value: BOND });
    await market.connect(alice).voteOnDispute(id, true); // 100
    await market.connect(frank).voteOnDispute(id, false); // 40
    await networkHelpers.mine(DISPUTE_PERIOD);
    const burnBefore = await ethers.provider.getBalance(BURN_ADDRESS);
    const burnt = (MIN_STAKE * 9000n) / 10000n;
    const reward = MIN_STAKE - burnt;
    const tx = await market.resolveDispute(id);
    await expect(tx).to.emit(market, "DisputeResolved").withArgs(id, 0, E(100), E(40));
    await expect(tx).to.emit(market, "WorkerSlashed").withArgs(id, bob.address, MIN_STAKE, burnt, reward);
    expect(await ethers.provider.getBalance(BURN_ADDRESS)).to.equal(burnBefore + burnt);
    expect(await market.totalBurnt()).to.equal(burnt);
    expect(await market.pendingOf(carol)).to.equal(FEE);
    expect(await market.pendingOf(dave)).to.equal(BOND + reward);
    expect(await market.pendingOf(bob)).to.equal(0n);
    expect(await market.pendingOf(erin)).to.equal(0n);
    expect(await market.pendingOf(timelock)).to.equal(0n);
    expect(await staked.balanceOf(bob)).to.equal(E(30) - MIN_STAKE);
    expect(await staked.lockedOf(bob)).to.equal(0n);
    const w = await market.workers(bob);
    expect(w.banned).to.equal(true);
    expect(w.registered).to.equal(false);
    expect((await market.job(id)).status).to.equal(S.Fraud);
    await expect(market.connect(bob).registerWorker()).to.be.revertedWithCustomError(market, "WorkerBanned");
    await expect(market.resolveDispute(id)).to.be.revertedWithCustomError(market, "WrongStatus").withArgs(S.Fraud);
    await conservation(s);
    await withdrawAll(market, [carol, dave]);
    expect(await ethers.provider.getBalance(market)).to.equal(marketBefore);
  });

  it("a banned worker can't claim; its other open jobs still settle", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, alice, bob, carol, dave } = s;
    const good = await committed(s);
    const bad = await committed(s);
    await market.connect(carol).postJob(1, h("i"), (await blockNumber()) + 50n, { value: FEE });
    const open = await market.jobCount();
    await market.connect(dave).challenge(bad, { value: BOND });
    await market.connect(alice).voteOnDispute(bad, true);
    await networkHelpers.mine(DISPUTE_PERIOD);
    await market.resolveDispute(bad);
    await expect(market.connect(bob).claimJob(open)).to.be.revertedWithCustomError(market, "WorkerBanned");
    await market.finalize(good);
    expect((await market.job(good)).status).to.equal(S.Finalized);
    await conservation(s);
  });

  it("REJECTED (majority valid or a tie): the bond goes to the worker, the job is paid", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, staked, alice, bob, dave, frank, grace } = s;
    // grace votes 40 too, making a 40:40 tie possible
    await staked.connect(grace).deposit({ value: E(40) });
    await staked.connect(grace).delegate(grace.address);
    const id = await committed(s);
    await market.connect(dave).challenge(id, { value: BOND });
    await market.connect(frank).voteOnDispute(id, false);
    await market.connect(grace).voteOnDispute(id, true);
    await networkHelpers.mine(DISPUTE_PERIOD);
    await expect(market.resolveDispute(id)).to.emit(market, "DisputeResolved").withArgs(id, 1, E(40), E(40));
    const royalty = (FEE * 1000n) / 10000n;
    expect(await market.pendingOf(bob)).to.equal(BOND + FEE - royalty);
    expect(await market.pendingOf(dave)).to.equal(0n);
    expect((await market.job(id)).status).to.equal(S.Finalized);
    // a clear majority for "valid"
    const id2 = await committed(s);
    await market.connect(dave).challenge(id2, { value: BOND });
    await market.connect(alice).voteOnDispute(id2, false);
    await market.connect(frank).voteOnDispute(id2, true);
    await networkHelpers.mine(DISPUTE_PERIOD);
    await expect(market.resolveDispute(id2)).to.emit(market, "DisputeResolved").withArgs(id2, 1, E(40), E(100));
    await conservation(s);
  });

  it("INCONCLUSIVE (no quorum): the result stands and the bond is returned", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, bob, dave, frank } = s;
    const id = await committed(s);
    await market.connect(dave).challenge(id, { value: BOND });
    // supply 170, quorum 20% = 34: nobody votes
    await networkHelpers.mine(DISPUTE_PERIOD + 1n);
    await expect(market.resolveDispute(id)).to.emit(market, "DisputeResolved").withArgs(id, 2, 0, 0);
    expect(await market.pendingOf(dave)).to.equal(BOND);
    expect((await market.job(id)).status).to.equal(S.Finalized);
    expect(await market.pendingOf(bob)).to.be.greaterThan(0n);
    // a fraud majority below quorum is inconclusive too
    const { staked, grace } = s;
    await staked.connect(grace).deposit({ value: E(5) });
    await staked.connect(grace).delegate(grace.address);
    const id2 = await committed(s);
    await market.connect(dave).challenge(id2, { value: BOND });
    await market.connect(grace).voteOnDispute(id2, true);
    await networkHelpers.mine(DISPUTE_PERIOD);
    await expect(market.resolveDispute(id2)).to.emit(market, "DisputeResolved").withArgs(id2, 2, E(5), 0);
    expect(frank.address).to.not.equal(dave.address);
    await conservation(s);
  });

  it("accepts native POAI only from StakedPOAI", async function () {
    const { market, alice } = await networkHelpers.loadFixture(fixture);
    await expect(alice.sendTransaction({ to: market, value: 1 })).to.be.revertedWithCustomError(market, "UnexpectedPayment");
  });

  it("conserves every wei across a mix of jobs: in = paid + refunded + burnt + held", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, alice, bob, carol, dave, erin, timelock } = s;
    const start = await ethers.provider.getBalance(market);
    let feesIn = 0n;
    let bondsIn = 0n;
    const a = await committed(s, [1, 2, 5], [7, 11, 13]); feesIn += FEE; // finalized
    const b = await committed(s); feesIn += FEE; // fraud
    const c = await committed(s); feesIn += FEE; // rejected challenge
    await market.connect(carol).postJob(1, h("x"), (await blockNumber()) + 3n, { value: FEE }); feesIn += FEE; // refunded
    const d = await market.jobCount();
    await market.connect(carol).postJob(1, h("y"), (await blockNumber()) + 30n, { value: FEE }); feesIn += FEE; // stays open
    await market.connect(dave).challenge(b, { value: BOND }); bondsIn += BOND;
    await market.connect(dave).challenge(c, { value: BOND }); bondsIn += BOND;
    await market.connect(alice).voteOnDispute(b, true);
    await market.connect(alice).voteOnDispute(c, false);
    await networkHelpers.mine(DISPUTE_PERIOD + CHALLENGE_WINDOW);
    await market.finalize(a);
    await market.resolveDispute(b);
    await market.resolveDispute(c);
    await market.refund(d);
    const slashIn = MIN_STAKE;
    const burnt = await market.totalBurnt();
    expect(await market.totalEscrow()).to.equal(FEE); // only the open job's fee is still escrowed
    let paidOut = 0n;
    for (const acct of [bob, carol, dave, erin]) {
      const p = await market.pendingOf(acct);
      if (p > 0n) { await market.connect(acct).withdraw(); paidOut += p; }
    }
    // the timelock's genesis royalties stay pending until governance withdraws them
    const timelockPending = await market.pendingOf(timelock);
    expect(feesIn + bondsIn + slashIn).to.equal(paidOut + burnt + timelockPending + (await market.totalEscrow()));
    expect(await ethers.provider.getBalance(market)).to.equal(start + timelockPending + (await market.totalEscrow()));
    await conservation(s);
  });
});

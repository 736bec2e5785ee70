import { expect } from "chai";
import {
  ethers, networkHelpers, deploySystem, mineToEpoch, MIN_STAKE, BOND, CHALLENGE_WINDOW, MAX_JOB_BLOCKS,
  BURN_ADDRESS, h, blockNumber, registerWithPayload,
} from "./helpers/setup.js";

const E = (n) => ethers.parseEther(String(n));
const FEE = E(2);
const S = { None: 0n, Open: 1n, Claimed: 2n, Committed: 3n, Finalized: 4n, Refunded: 5n, Fraud: 6n };
const CHECK = "0x0000000000000000000000000000000000000f00"; // INFERENCE_CHECK precompile
const MAX_PROMPT = 256;
const MAX_OUT = 255n;
const EOS = 258;
const coder = ethers.AbiCoder.defaultAbiCoder();
const CALL_TYPES = ["uint256", "bytes", "uint256", "uint256", "uint256", "uint256", "bytes", "uint256[]", "uint256[]"];
const VERDICT_TYPES = ["uint256", "uint256", "uint256[]", "uint256[]"];
const NO_INDEX = ethers.MaxUint256;

const pack = (tokens) => ethers.concat(tokens.map((t) => ethers.toBeHex(t, 2)));
const PROMPT = ethers.toUtf8Bytes("The capital of France is");
const OUT = pack([32, 80, 97, 114, 105, 115, EOS]); // " Paris" + EOS
const PARAMS = { maxTokens: 16n, temp: 0n, topP: 1_000_000n, seed: 7n };

describe("InferenceMarket", function () {
  // bob: worker; carol: buyer; dave: challenger; erin: contributor of expert 5; timelock: of genesis.
  async function fixture() {
    const s = await deploySystem();
    const { staked, market, registry, timelock, bob, erin } = s;
    await staked.connect(bob).deposit({ value: E(30) });
    await market.connect(bob).registerWorker();
    // erin contributes a better layer1.expert1; snapshot 2 uses it and governance activates it
    await registerWithPayload(registry, erin, "layer1.expert1", 1, 1, ethers.toUtf8Bytes("erin-v2"), [4]);
    await registry.connect(erin).registerSnapshot(h("trunk"), [1, 2, 3, 5]);
    await networkHelpers.impersonateAccount(timelock.target);
    await networkHelpers.setBalance(timelock.target, E(1));
    const epoch = (await registry.currentEpoch()) + 1n; // the shared chain may be past epoch 0
    await registry.connect(await ethers.getSigner(timelock.target)).scheduleSnapshot(2, epoch);
    await mineToEpoch(epoch);
    // the precompile's stand-in: runtime code of a deployed double, placed at 0x...0f00
    const d = await ethers.deployContract("InferenceCheckDouble");
    await networkHelpers.setCode(CHECK, await ethers.provider.getCode(d));
    s.check = await ethers.getContractAt("InferenceCheckDouble", CHECK);
    return s;
  }

  async function post(s, { prompt = PROMPT, p = PARAMS, blocks = 20n, fee = FEE } = {}) {
    const deadline = (await blockNumber()) + blocks;
    await s.market.connect(s.carol).postJob(2, prompt, p.maxTokens, p.temp, p.topP, p.seed, deadline, { value: fee });
    return s.market.jobCount();
  }

  async function committed(s, experts = [1, 5], counts = [1, 3], out = OUT) {
    const id = await post(s);
    await s.market.connect(s.bob).claimJob(id);
    await s.market.connect(s.bob).commitResult(id, out, experts, counts);
    return id;
  }

  /** Programs the double to answer exactly this job's input with `fault`. */
  async function verdict(s, fault, { experts = [1, 5], counts = [1, 3], out = OUT, index = NO_INDEX, recomputed } = {}) {
    const input = coder.encode(CALL_TYPES, [2, PROMPT, PARAMS.maxTokens, PARAMS.temp, PARAMS.topP, PARAMS.seed, out, experts, counts]);
    const [ids, cs] = recomputed ?? [experts, counts];
    await s.check.program(ethers.keccak256(input), coder.encode(VERDICT_TYPES, [fault, index, ids, cs]));
  }

  async function conservation(s) {
    const { market, staked } = s;
    expect(await ethers.provider.getBalance(market)).to.equal((await market.totalEscrow()) + (await market.totalPending()));
    expect(await ethers.provider.getBalance(staked)).to.equal((await staked.totalSupply()) + (await staked.totalUnbonding()));
  }

  it("rejects bad constructor parameters", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const F = await ethers.getContractFactory("InferenceMarket");
    const ok = [s.staked.target, s.registry.target, MIN_STAKE, BOND, 10, 1000, 100];
    const bad = [[0, ethers.ZeroAddress], [1, ethers.ZeroAddress], [2, 0], [3, 0], [4, 0], [5, 10001], [6, 0]];
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

  it("posts the prompt and decoding parameters in the event, keeps their hashes", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, carol } = s;
    expect(await market.activeSnapshot()).to.equal(2n);
    const dl = (await blockNumber()) + 10n;
    await expect(market.connect(carol).postJob(2, PROMPT, 16, 700, 900_000, 42, dl, { value: FEE }))
      .to.emit(market, "JobPosted").withArgs(1, carol.address, 2, FEE, dl, ethers.hexlify(PROMPT), 16, 700, 900_000, 42);
    const j = await market.job(1);
    expect(j.status).to.equal(S.Open);
    expect(j.promptHash).to.equal(ethers.keccak256(PROMPT));
    expect([j.maxTokens, j.temperatureMilli, j.topPMicro, j.seed]).to.deep.equal([16n, 700n, 900_000n, 42n]);
    expect(await market.totalEscrow()).to.equal(FEE);
    await expect(market.job(2)).to.be.revertedWithCustomError(market, "UnknownJob").withArgs(2);
  });

  it("refuses a bad job: fee, snapshot not active, prompt, parameters, deadline", async function () {
    const { market, carol } = await networkHelpers.loadFixture(fixture);
    const bn = await blockNumber();
    const m = market.connect(carol);
    const v = { value: 1 };
    await expect(m.postJob(2, PROMPT, 8, 0, 1e6, 0, bn + 10n)).to.be.revertedWithCustomError(market, "ZeroFee");
    await expect(m.postJob(1, PROMPT, 8, 0, 1e6, 0, bn + 10n, v))
      .to.be.revertedWithCustomError(market, "SnapshotNotActive").withArgs(1, 2);
    await expect(m.postJob(3, PROMPT, 8, 0, 1e6, 0, bn + 10n, v))
      .to.be.revertedWithCustomError(market, "SnapshotNotActive").withArgs(3, 2);
    await expect(m.postJob(2, "0x", 8, 0, 1e6, 0, bn + 10n, v)).to.be.revertedWithCustomError(market, "EmptyPrompt");
    await expect(m.postJob(2, new Uint8Array(MAX_PROMPT + 1), 8, 0, 1e6, 0, bn + 10n, v))
      .to.be.revertedWithCustomError(market, "PromptTooLong").withArgs(MAX_PROMPT + 1, MAX_PROMPT);
    await expect(m.postJob(2, PROMPT, 0, 0, 1e6, 0, bn + 10n, v))
      .to.be.revertedWithCustomError(market, "MaxTokensOutOfRange").withArgs(0, MAX_OUT);
    await expect(m.postJob(2, PROMPT, MAX_OUT + 1n, 0, 1e6, 0, bn + 10n, v))
      .to.be.revertedWithCustomError(market, "MaxTokensOutOfRange").withArgs(MAX_OUT + 1n, MAX_OUT);
    await expect(m.postJob(2, PROMPT, 8, 2001, 1e6, 0, bn + 10n, v))
      .to.be.revertedWithCustomError(market, "TemperatureOutOfRange").withArgs(2001, 2000);
    await expect(m.postJob(2, PROMPT, 8, 500, 0, 0, bn + 10n, v))
      .to.be.revertedWithCustomError(market, "TopPOutOfRange").withArgs(0, 1e6);
    await expect(m.postJob(2, PROMPT, 8, 500, 1e6 + 1, 0, bn + 10n, v))
      .to.be.revertedWithCustomError(market, "TopPOutOfRange").withArgs(1e6 + 1, 1e6);
    await expect(m.postJob(2, PROMPT, 8, 500, 1e6, 2n ** 64n, bn + 10n, v))
      .to.be.revertedWithCustomError(market, "SeedOutOfRange").withArgs(2n ** 64n);
    await expect(m.postJob(2, PROMPT, 8, 0, 1e6, 0, bn + 1n, v)).to.be.revertedWithCustomError(market, "BadDeadline");
    await expect(m.postJob(2, PROMPT, 8, 0, 1e6, 0, bn + 2n + MAX_JOB_BLOCKS, v))
      .to.be.revertedWithCustomError(market, "BadDeadline");
    // the limits themselves are accepted
    await m.postJob(2, new Uint8Array(MAX_PROMPT).fill(65), MAX_OUT, 2000, 1, 2n ** 64n - 1n, bn + 20n, v);
  });

  it("lets the buyer cancel an open job", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, carol, dave } = s;
    await post(s);
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
    const { market, staked, bob, grace } = s;
    for (let i = 0; i < 4; i++) await post(s, { blocks: 10n });
    const dl = (await market.job(4)).deadline;
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

  it("commits output tokens and expert use; refuses tokens outside the vocabulary, experts outside the snapshot", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, bob, dave } = s;
    await post(s);
    await expect(market.connect(bob).commitResult(1, OUT, [1], [1]))
      .to.be.revertedWithCustomError(market, "WrongStatus").withArgs(S.Open);
    await market.connect(bob).claimJob(1);
    const c = market.connect(bob);
    await expect(market.connect(dave).commitResult(1, OUT, [1], [1])).to.be.revertedWithCustomError(market, "NotWorker");
    await expect(c.commitResult(1, "0x", [1], [1])).to.be.revertedWithCustomError(market, "BadOutputLength").withArgs(0, 16);
    await expect(c.commitResult(1, "0x004142", [1], [1])).to.be.revertedWithCustomError(market, "BadOutputLength").withArgs(3, 16);
    await expect(c.commitResult(1, pack(Array(17).fill(65)), [1], [1]))
      .to.be.revertedWithCustomError(market, "BadOutputLength").withArgs(34, 16);
    await expect(c.commitResult(1, pack([65, 259]), [1], [1]))
      .to.be.revertedWithCustomError(market, "TokenOutsideVocabulary").withArgs(1, 259);
    await expect(c.commitResult(1, pack([0xffff]), [1], [1]))
      .to.be.revertedWithCustomError(market, "TokenOutsideVocabulary").withArgs(0, 0xffff);
    await expect(c.commitResult(1, OUT, [], [])).to.be.revertedWithCustomError(market, "BadExperts");
    await expect(c.commitResult(1, OUT, [1, 2], [1])).to.be.revertedWithCustomError(market, "BadExperts");
    await expect(c.commitResult(1, OUT, [2, 1], [1, 1])).to.be.revertedWithCustomError(market, "BadExperts");
    await expect(c.commitResult(1, OUT, [1], [0])).to.be.revertedWithCustomError(market, "BadExperts");
    const many = Array.from({ length: 65 }, (_, i) => i + 1);
    await expect(c.commitResult(1, OUT, many, many)).to.be.revertedWithCustomError(market, "BadExperts");
    await expect(c.commitResult(1, OUT, [4], [1])) // expert 4 is not in snapshot 2
      .to.be.revertedWithCustomError(market, "ExpertNotInSnapshot").withArgs(4);
    await expect(c.commitResult(1, OUT, [1, 5], [2, 6]))
      .to.emit(market, "ResultCommitted").withArgs(1, bob.address, OUT, [1, 5], [2, 6]);
    const j = await market.job(1);
    expect(j.status).to.equal(S.Committed);
    expect(j.outputHash).to.equal(ethers.keccak256(OUT));
    expect(j.expertIds).to.deep.equal([1n, 5n]);
    // past the deadline a claimed job can no longer be committed
    await post(s, { blocks: 3n });
    await market.connect(bob).claimJob(2);
    await networkHelpers.mine(3);
    await expect(c.commitResult(2, OUT, [1], [1])).to.be.revertedWithCustomError(market, "DeadlinePassed");
  });

  it("finalizes after the window: worker paid, royalty split by the committed counts, dust to the worker", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, staked, timelock, bob, erin } = s;
    const id = await committed(s, [1, 5], [1, 2]); // expert 1 (timelock, genesis) 1 use, expert 5 (erin) 2 uses
    const ends = (await market.job(id)).committedAt + CHALLENGE_WINDOW;
    await expect(market.finalize(id)).to.be.revertedWithCustomError(market, "ChallengeWindowOpen").withArgs(ends);
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
    await post(s, { blocks: 5n });
    await post(s, { blocks: 4n });
    const dl = (await market.job(1)).deadline;
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

  it("challenge refusals: bond, window, the worker itself, wrong prompt or output, a failed check", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, bob, dave } = s;
    const id = await committed(s);
    const m = market.connect(dave);
    const ends = (await market.job(id)).committedAt + CHALLENGE_WINDOW;
    await expect(m.challenge(id, PROMPT, OUT, { value: BOND - 1n }))
      .to.be.revertedWithCustomError(market, "WrongBond").withArgs(BOND);
    await expect(market.connect(bob).challenge(id, PROMPT, OUT, { value: BOND }))
      .to.be.revertedWithCustomError(market, "SelfChallenge");
    await expect(m.challenge(id, ethers.toUtf8Bytes("another prompt"), OUT, { value: BOND }))
      .to.be.revertedWithCustomError(market, "PromptMismatch");
    await expect(m.challenge(id, PROMPT, pack([65]), { value: BOND }))
      .to.be.revertedWithCustomError(market, "OutputMismatch");
    // the precompile fails (it does for a malformed job or a snapshot it cannot load): reverted
    await expect(m.challenge(id, PROMPT, OUT, { value: BOND }))
      .to.be.revertedWithCustomError(market, "InferenceCheckFailed");
    await verdict(s, 1n, { experts: [9], counts: [9] }); // a verdict for another input: fails too
    await expect(m.challenge(id, PROMPT, OUT, { value: BOND }))
      .to.be.revertedWithCustomError(market, "InferenceCheckFailed");
    await expect(m.challenge(id, PROMPT, OUT, { value: BOND, gasLimit: 120_000 }))
      .to.be.revertedWithCustomError(market, "CheckGasTooLow");
    await verdict(s, 0n);
    await networkHelpers.mineUpTo(ends - 1n); // the next transaction lands in the window's last block
    await expect(m.challenge(id, PROMPT, OUT, { value: BOND, gasLimit: 120_000 }))
      .to.be.revertedWithCustomError(market, "CheckGasTooLow");
    await networkHelpers.mine(1);
    await expect(m.challenge(id, PROMPT, OUT, { value: BOND }))
      .to.be.revertedWithCustomError(market, "ChallengeWindowClosed").withArgs(ends);
    await expect(m.challenge(id + 1n, PROMPT, OUT, { value: BOND }))
      .to.be.revertedWithCustomError(market, "UnknownJob");
    await conservation(s);
  });

  it("FRAUD proven by the check: 90% of the stake burnt, 10% + bond to the challenger, fee refunded, worker banned", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, staked, bob, carol, dave } = s;
    const id = await committed(s);
    await verdict(s, 1n, { index: 2n, recomputed: [[1, 5], [2, 2]] });
    const burnt = (MIN_STAKE * 9000n) / 10000n;
    const reward = MIN_STAKE - burnt;
    const stakeBefore = await staked.balanceOf(bob);
    const tx = market.connect(dave).challenge(id, PROMPT, OUT, { value: BOND });
    await expect(tx).to.emit(market, "ChallengeSettled").withArgs(id, dave.address, 1, 2);
    await expect(tx).to.emit(market, "WorkerSlashed").withArgs(id, bob.address, MIN_STAKE, burnt, reward);
    await expect(tx).to.changeEtherBalances(ethers, [BURN_ADDRESS, dave], [burnt, -BOND]);
    const j = await market.job(id);
    expect(j.status).to.equal(S.Fraud);
    expect(j.challenger).to.equal(dave.address);
    expect(await staked.balanceOf(bob)).to.equal(stakeBefore - MIN_STAKE);
    expect(await staked.lockedOf(bob)).to.equal(0n);
    expect(await market.pendingOf(carol)).to.equal(FEE);
    expect(await market.pendingOf(dave)).to.equal(BOND + reward);
    expect(await market.pendingOf(bob)).to.equal(0n);
    expect(await market.totalBurnt()).to.equal(burnt);
    const w = await market.workers(bob);
    expect([w.registered, w.banned, w.openJobs]).to.deep.equal([false, true, 0n]);
    await expect(market.connect(dave).challenge(id, PROMPT, OUT, { value: BOND }))
      .to.be.revertedWithCustomError(market, "AlreadyChallenged").withArgs(dave.address);
    await expect(market.connect(bob).registerWorker()).to.be.revertedWithCustomError(market, "WorkerBanned");
    await post(s);
    await expect(market.connect(bob).claimJob(2)).to.be.revertedWithCustomError(market, "WorkerBanned");
    await expect(market.connect(dave).withdraw()).to.changeEtherBalances(ethers, [dave], [BOND + reward]);
    await conservation(s);
  });

  it("an inflated count is a fraud too (fault 3), the same settlement", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, bob, dave } = s;
    const id = await committed(s, [1, 5], [1, 30]);
    await verdict(s, 3n, { experts: [1, 5], counts: [1, 30] });
    await expect(market.connect(dave).challenge(id, PROMPT, OUT, { value: BOND }))
      .to.emit(market, "ChallengeSettled").withArgs(id, dave.address, 3, NO_INDEX);
    expect((await market.job(id)).status).to.equal(S.Fraud);
    expect((await market.workers(bob)).banned).to.equal(true);
  });

  it("NO FRAUD: the bond goes to the worker and the job is paid out at once; no second challenge", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, timelock, bob, erin, dave, grace } = s;
    const id = await committed(s, [1, 5], [1, 3]);
    await verdict(s, 0n);
    const royalty = (FEE * 1000n) / 10000n;
    const toGenesis = royalty / 4n;
    const toErin = (royalty * 3n) / 4n;
    const tx = market.connect(dave).challenge(id, PROMPT, OUT, { value: BOND });
    await expect(tx).to.emit(market, "ChallengeSettled").withArgs(id, dave.address, 0, NO_INDEX);
    await expect(tx).to.emit(market, "JobFinalized").withArgs(id, FEE - toGenesis - toErin, toGenesis + toErin);
    expect((await market.job(id)).status).to.equal(S.Finalized);
    expect(await market.pendingOf(bob)).to.equal(FEE - toGenesis - toErin + BOND);
    expect(await market.pendingOf(erin)).to.equal(toErin);
    expect(await market.pendingOf(timelock)).to.equal(toGenesis);
    expect(await market.pendingOf(dave)).to.equal(0n);
    await expect(market.connect(grace).challenge(id, PROMPT, OUT, { value: BOND }))
      .to.be.revertedWithCustomError(market, "AlreadyChallenged").withArgs(dave.address);
    await conservation(s);
  });

  it("accepts native POAI only from StakedPOAI", async function () {
    const { market, carol } = await networkHelpers.loadFixture(fixture);
    await expect(carol.sendTransaction({ to: market, value: 1 })).to.be.revertedWithCustomError(market, "UnexpectedPayment");
  });

  it("conserves every wei across a mix of jobs: in = paid + refunded + burnt + held", async function () {
    const s = await networkHelpers.loadFixture(fixture);
    const { market, staked, bob, carol, dave, erin, timelock, grace } = s;
    await staked.connect(grace).deposit({ value: E(20) });
    await market.connect(grace).registerWorker();
    const honest = await committed(s, [1, 5], [3, 4]); // bob, finalized
    const fraud = await post(s); // grace, slashed
    await market.connect(grace).claimJob(fraud);
    await market.connect(grace).commitResult(fraud, OUT, [1, 5], [1, 3]);
    await verdict(s, 1n, { index: 0n });
    await market.connect(dave).challenge(fraud, PROMPT, OUT, { value: BOND });
    await post(s, { blocks: 3n }); // refunded
    await networkHelpers.mine(CHALLENGE_WINDOW + 1n);
    await market.finalize(honest);
    await market.refund(3);
    const fees = 3n * FEE;
    const burnt = (MIN_STAKE * 9000n) / 10000n;
    const parties = [bob, carol, dave, erin, grace];
    let credited = await market.pendingOf(timelock);
    for (const a of parties) credited += await market.pendingOf(a);
    expect(credited + burnt).to.equal(fees + BOND + MIN_STAKE); // in: fees, bond, slashed stake
    for (const a of parties) if ((await market.pendingOf(a)) > 0n) await market.connect(a).withdraw();
    expect(await market.totalEscrow()).to.equal(0n);
    expect(await market.totalPending()).to.equal(await market.pendingOf(timelock));
    expect(await ethers.provider.getBalance(BURN_ADDRESS)).to.equal(burnt);
    await conservation(s);
  });
});

import { expect } from "chai";
import {
  ethers, networkHelpers, EPOCH_BLOCKS, GENESIS_DATASET, GENESIS_KEY, h, mineToEpoch,
} from "./helpers/setup.js";

describe("DatasetDAO", function () {
  async function fixture() {
    const [owner, alice] = await ethers.getSigners();
    const dao = await ethers.deployContract("DatasetDAO", [owner, EPOCH_BLOCKS, GENESIS_DATASET, 1000, GENESIS_KEY]);
    return { owner, alice, dao };
  }
  const KEY = h("secret-key-2");
  const COMMIT = ethers.keccak256(KEY);

  it("starts with the genesis dataset active and its key public", async function () {
    const { dao } = await networkHelpers.loadFixture(fixture);
    const a = await dao.activeDataset(0);
    expect(a.datasetId).to.equal(1n);
    expect(a.contentHash).to.equal(GENESIS_DATASET);
    expect(a.recordCount).to.equal(1000n);
    expect(a.key).to.equal(GENESIS_KEY);
    expect(a.revealed).to.equal(true);
    const d = await dao.dataset(1);
    expect(d.keyCommitment).to.equal(ethers.keccak256(GENESIS_KEY));
    expect(await dao.datasetCount()).to.equal(1n);
  });

  it("rejects bad constructor arguments", async function () {
    const { dao, owner } = await networkHelpers.loadFixture(fixture);
    const F = await ethers.getContractFactory("DatasetDAO");
    await expect(F.deploy(owner, 0, GENESIS_DATASET, 1, GENESIS_KEY)).to.be.revertedWithCustomError(dao, "InvalidEpochBlocks");
    await expect(F.deploy(owner, 32, ethers.ZeroHash, 1, GENESIS_KEY)).to.be.revertedWithCustomError(dao, "ZeroContentHash");
    await expect(F.deploy(owner, 32, GENESIS_DATASET, 0, GENESIS_KEY)).to.be.revertedWithCustomError(dao, "ZeroRecordCount");
  });

  it("schedules datasets (owner only, future, ordered, well-formed)", async function () {
    const { dao, alice } = await networkHelpers.loadFixture(fixture);
    expect(await dao.currentEpoch()).to.be.lessThan(2n); // a fresh chain: epochs 2, 3 are ahead
    await expect(dao.connect(alice).scheduleDataset(h("d2"), 10, COMMIT, 3))
      .to.be.revertedWithCustomError(dao, "OwnableUnauthorizedAccount");
    await expect(dao.scheduleDataset(h("d2"), 10, COMMIT, 0)).to.be.revertedWithCustomError(dao, "EpochNotInFuture");
    await expect(dao.scheduleDataset(ethers.ZeroHash, 10, COMMIT, 3)).to.be.revertedWithCustomError(dao, "ZeroContentHash");
    await expect(dao.scheduleDataset(h("d2"), 0, COMMIT, 3)).to.be.revertedWithCustomError(dao, "ZeroRecordCount");
    await expect(dao.scheduleDataset(h("d2"), 10, ethers.ZeroHash, 3)).to.be.revertedWithCustomError(dao, "ZeroCommitment");
    await expect(dao.scheduleDataset(h("d2"), 10, COMMIT, 3))
      .to.emit(dao, "DatasetScheduled").withArgs(2, h("d2"), 10, COMMIT, 3);
    await expect(dao.scheduleDataset(h("d3"), 10, COMMIT, 2))
      .to.be.revertedWithCustomError(dao, "EpochBeforeLastScheduled").withArgs(2, 3);
    const before = await dao.activeDataset(2);
    expect(before.datasetId).to.equal(1n);
    const at = await dao.activeDataset(3);
    expect(at.datasetId).to.equal(2n);
    expect(at.revealed).to.equal(false);
    expect(at.key).to.equal(ethers.ZeroHash);
  });

  it("accepts the key only once, only matching, only from the activation epoch", async function () {
    const { dao, alice } = await networkHelpers.loadFixture(fixture);
    const now = await dao.currentEpoch();
    const act = now + 3n;
    await dao.scheduleDataset(h("d2"), 10, COMMIT, act);
    await expect(dao.connect(alice).revealKey(2, KEY)).to.be.revertedWithCustomError(dao, "NotYetActive").withArgs(act, now);
    await mineToEpoch(act);
    await expect(dao.connect(alice).revealKey(2, h("wrong"))).to.be.revertedWithCustomError(dao, "KeyMismatch");
    await expect(dao.connect(alice).revealKey(2, KEY)).to.emit(dao, "KeyRevealed").withArgs(2, KEY);
    const a = await dao.activeDataset(act);
    expect(a.key).to.equal(KEY);
    expect(a.revealed).to.equal(true);
    await expect(dao.revealKey(2, KEY)).to.be.revertedWithCustomError(dao, "AlreadyRevealed").withArgs(2);
    await expect(dao.revealKey(1, GENESIS_KEY)).to.be.revertedWithCustomError(dao, "AlreadyRevealed");
    await expect(dao.revealKey(9, KEY)).to.be.revertedWithCustomError(dao, "UnknownDataset").withArgs(9);
    await expect(dao.dataset(0)).to.be.revertedWithCustomError(dao, "UnknownDataset");
  });
});

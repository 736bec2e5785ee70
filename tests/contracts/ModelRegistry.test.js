import { expect } from "chai";
import {
  ethers, networkHelpers, deployRegistry, genesisPayloads, GENESIS_TRUNK, EPOCH_BLOCKS, LAYERS, EXPERTS,
  h, blockNumber, mineToEpoch, CHUNK_BYTES, chunksOf, registerWithPayload,
} from "./helpers/setup.js";

describe("ModelRegistry", function () {
  // Owner is a plain account here; the governance test drives the timelock-owned one.
  async function fixture() {
    const [owner, contributor, alice] = await ethers.getSigners();
    const registry = await deployRegistry(owner.address, contributor.address);
    return { owner, contributor, alice, registry };
  }

  it("registers the genesis model at construction, active from epoch 0", async function () {
    const { registry, contributor } = await networkHelpers.loadFixture(fixture);
    expect(await registry.layers()).to.equal(LAYERS);
    expect(await registry.expertsPerLayer()).to.equal(EXPERTS);
    expect(await registry.epochBlocks()).to.equal(EPOCH_BLOCKS);
    expect(await registry.expertCount()).to.equal(4n);
    expect(await registry.snapshotCount()).to.equal(1n);
    expect(await registry.activeSnapshot(0)).to.equal(1n);
    expect(await registry.activeSnapshot(1000)).to.equal(1n);
    expect(await registry.snapshotExperts(1)).to.deep.equal([1n, 2n, 3n, 4n]);
    const snap = await registry.snapshot(1);
    expect(snap.trunkHash).to.equal(GENESIS_TRUNK);
    const e = await registry.expert(3);
    expect(e.name).to.equal("layer1.expert0");
    expect(e.layer).to.equal(1n);
    expect(e.index).to.equal(0n);
    expect(e.payloadHash).to.equal(genesisPayloads()[2]);
    expect(e.size).to.equal(1000n);
    expect(e.contributor).to.equal(contributor.address);
    expect(e.dependsOn).to.deep.equal([]);
    expect(await registry.expertByPayload(genesisPayloads()[2])).to.equal(3n);
    expect(await registry.isExpertInSnapshot(1, 3)).to.equal(true);
  });

  it("rejects a bad shape, epoch length or genesis list", async function () {
    const [owner] = await ethers.getSigners();
    const F = await ethers.getContractFactory("ModelRegistry");
    const p = genesisPayloads();
    const sizes = p.map(() => 1);
    const probe = await deployRegistry(owner.address, owner.address);
    await expect(F.deploy(owner, 0, 2, 32, GENESIS_TRUNK, [], [], owner)).to.be.revertedWithCustomError(probe, "InvalidShape");
    await expect(F.deploy(owner, 2, 0, 32, GENESIS_TRUNK, [], [], owner)).to.be.revertedWithCustomError(probe, "InvalidShape");
    await expect(F.deploy(owner, 2, 2, 0, GENESIS_TRUNK, p, sizes, owner)).to.be.revertedWithCustomError(probe, "InvalidEpochBlocks");
    await expect(F.deploy(owner, 2, 2, 32, GENESIS_TRUNK, p.slice(1), sizes, owner)).to.be.revertedWithCustomError(probe, "GenesisMismatch");
    await expect(F.deploy(owner, 2, 2, 32, GENESIS_TRUNK, p, sizes.slice(1), owner)).to.be.revertedWithCustomError(probe, "GenesisMismatch");
    await expect(F.deploy(owner, 2, 2, 32, ethers.ZeroHash, p, sizes, owner)).to.be.revertedWithCustomError(probe, "ZeroTrunkHash");
    await expect(F.deploy(owner, 2, 2, 32, GENESIS_TRUNK, [p[0], p[0], p[2], p[3]], sizes, owner))
      .to.be.revertedWithCustomError(probe, "DuplicatePayload").withArgs(1);
  });

  it("registers an expert with its contributor and emits the entry", async function () {
    const { registry, alice } = await networkHelpers.loadFixture(fixture);
    await expect(registry.connect(alice).registerExpert("layer0.expert1", 0, 1, h("v2"), 777, [h("v2")], [2]))
      .to.emit(registry, "ExpertRegistered")
      .withArgs(5, 0, 1, h("v2"), 777, alice.address, [2], "layer0.expert1");
    const e = await registry.expert(5);
    expect(e.contributor).to.equal(alice.address);
    expect(e.dependsOn).to.deep.equal([2n]);
  });

  it("rejects bad expert entries", async function () {
    const { registry, alice } = await networkHelpers.loadFixture(fixture);
    const r = registry.connect(alice);
    await expect(r.registerExpert("", 0, 0, h("a"), 1, [h("a")], [])).to.be.revertedWithCustomError(registry, "InvalidName");
    await expect(r.registerExpert("x".repeat(65), 0, 0, h("a"), 1, [h("a")], [])).to.be.revertedWithCustomError(registry, "InvalidName");
    await expect(r.registerExpert("n", 2, 0, h("a"), 1, [h("a")], [])).to.be.revertedWithCustomError(registry, "LayerOutOfRange").withArgs(2);
    await expect(r.registerExpert("n", 0, 2, h("a"), 1, [h("a")], [])).to.be.revertedWithCustomError(registry, "IndexOutOfRange").withArgs(2);
    await expect(r.registerExpert("n", 0, 0, ethers.ZeroHash, 1, [ethers.ZeroHash], [])).to.be.revertedWithCustomError(registry, "ZeroPayloadHash");
    await expect(r.registerExpert("n", 0, 0, h("a"), 0, [], [])).to.be.revertedWithCustomError(registry, "ZeroSize");
    await expect(r.registerExpert("n", 0, 0, genesisPayloads()[0], 1, [genesisPayloads()[0]], []))
      .to.be.revertedWithCustomError(registry, "DuplicatePayload").withArgs(1);
    await expect(r.registerExpert("n", 0, 0, h("a"), 1, [h("a")], [1, 2, 3, 4, 1, 2, 3, 4, 1]))
      .to.be.revertedWithCustomError(registry, "TooManyDependencies");
    await expect(r.registerExpert("n", 0, 0, h("a"), 1, [h("a")], [5])).to.be.revertedWithCustomError(registry, "UnknownExpert").withArgs(5);
    await expect(r.registerExpert("n", 0, 0, h("a"), 1, [h("a")], [0])).to.be.revertedWithCustomError(registry, "UnknownExpert").withArgs(0);
  });

  it("returns an expert's lineage breadth first, each ancestor once", async function () {
    const { registry, alice } = await networkHelpers.loadFixture(fixture);
    const r = registry.connect(alice);
    await r.registerExpert("l0e0.v2", 0, 0, h("a"), 1, [h("a")], [1]); // 5 <- 1
    await r.registerExpert("l0e0.v3", 0, 0, h("b"), 1, [h("b")], [5, 2]); // 6 <- 5, 2
    await r.registerExpert("l0e0.v4", 0, 0, h("c"), 1, [h("c")], [6, 1]); // 7 <- 6, 1
    expect(await registry.lineage(7)).to.deep.equal([6n, 1n, 5n, 2n]);
    expect(await registry.lineage(5)).to.deep.equal([1n]);
    expect(await registry.lineage(1)).to.deep.equal([]);
    await expect(registry.lineage(99)).to.be.revertedWithCustomError(registry, "UnknownExpert");
    await expect(registry.expert(0)).to.be.revertedWithCustomError(registry, "UnknownExpert");
  });

  it("registers snapshots checked slot by slot against the shape", async function () {
    const { registry, alice } = await networkHelpers.loadFixture(fixture);
    const r = registry.connect(alice);
    await registerWithPayload(registry, alice, "layer1.expert1", 1, 1, ethers.toUtf8Bytes("new bytes!"), [4]);
    await expect(r.registerSnapshot(h("trunk2"), [1, 2, 3, 5]))
      .to.emit(registry, "SnapshotRegistered").withArgs(2, h("trunk2"), alice.address);
    expect(await registry.snapshotExperts(2)).to.deep.equal([1n, 2n, 3n, 5n]);
    expect(await registry.isExpertInSnapshot(2, 5)).to.equal(true);
    expect(await registry.isExpertInSnapshot(2, 4)).to.equal(false);
    await expect(r.registerSnapshot(ethers.ZeroHash, [1, 2, 3, 4])).to.be.revertedWithCustomError(registry, "ZeroTrunkHash");
    await expect(r.registerSnapshot(h("t"), [1, 2, 3]))
      .to.be.revertedWithCustomError(registry, "WrongExpertCount").withArgs(4, 3);
    await expect(r.registerSnapshot(h("t"), [2, 1, 3, 4]))
      .to.be.revertedWithCustomError(registry, "SlotMismatch").withArgs(0, 2);
    await expect(r.registerSnapshot(h("t"), [1, 2, 3, 9]))
      .to.be.revertedWithCustomError(registry, "UnknownExpert").withArgs(9);
    await r.registerExpert("layer1.expert1", 1, 1, h("no bytes"), 10, [h("no bytes")], []); // 6, no chunk sent
    await expect(r.registerSnapshot(h("t"), [1, 2, 3, 6]))
      .to.be.revertedWithCustomError(registry, "IncompletePayload").withArgs(6, 0, 1);
    await expect(registry.snapshot(7)).to.be.revertedWithCustomError(registry, "UnknownSnapshot").withArgs(7);
    await expect(registry.snapshotExperts(0)).to.be.revertedWithCustomError(registry, "UnknownSnapshot");
  });

  it("schedules snapshots: owner only, future epochs only, never before the last one", async function () {
    const { registry, owner, alice } = await networkHelpers.loadFixture(fixture);
    await registry.connect(alice).registerSnapshot(h("trunk2"), [1, 2, 3, 4]);
    await registry.connect(alice).registerSnapshot(h("trunk3"), [1, 2, 3, 4]);
    await expect(registry.connect(alice).scheduleSnapshot(2, 5))
      .to.be.revertedWithCustomError(registry, "OwnableUnauthorizedAccount");
    await expect(registry.scheduleSnapshot(9, 5)).to.be.revertedWithCustomError(registry, "UnknownSnapshot").withArgs(9);
    await expect(registry.scheduleSnapshot(0, 5)).to.be.revertedWithCustomError(registry, "UnknownSnapshot");
    // Fixtures may start at any block (other files mine first): epochs are relative to now.
    const b = (await registry.currentEpoch()) + 2n;
    await mineToEpoch(b);
    expect(await registry.currentEpoch()).to.equal(b - 1n); // the next block opens epoch b
    await expect(registry.scheduleSnapshot(2, b)).to.be.revertedWithCustomError(registry, "EpochNotInFuture").withArgs(b, b);
    await expect(registry.scheduleSnapshot(2, b + 3n)).to.emit(registry, "SnapshotScheduled").withArgs(2, b + 3n);
    await expect(registry.scheduleSnapshot(3, b + 2n))
      .to.be.revertedWithCustomError(registry, "EpochBeforeLastScheduled").withArgs(b + 2n, b + 3n);
    await registry.scheduleSnapshot(3, b + 3n); // same epoch: replaces the pending choice
    await registry.scheduleSnapshot(2, b + 5n);
    expect(await registry.activeSnapshot(b + 2n)).to.equal(1n);
    expect(await registry.activeSnapshot(b + 3n)).to.equal(3n);
    expect(await registry.activeSnapshot(b + 4n)).to.equal(3n);
    expect(await registry.activeSnapshot(b + 5n)).to.equal(2n);
    expect(owner.address).to.equal(await registry.owner());
    expect(await blockNumber()).to.be.greaterThanOrEqual(b * EPOCH_BLOCKS);
  });

  it("stores a snapshot's quality claim, checked for form, and exposes the schedule", async function () {
    const { registry, owner, alice } = await networkHelpers.loadFixture(fixture);
    const r = registry.connect(alice);
    const windows = await registry.GATE_WINDOWS();
    expect(windows).to.equal(256n);
    expect(await registry.CLAIM_BYTES()).to.equal(4n * windows);
    const claim = new Uint8Array(Number(4n * windows)).map((_, i) => (i * 13) % 256);
    await registerWithPayload(registry, alice, "layer1.expert1", 1, 1, ethers.toUtf8Bytes("better"), [4]);
    // Bad input: a malformed claim, an unknown base, an unregistered or incomplete expert.
    await expect(r.registerClaimedSnapshot(h("t"), [1, 2, 3, 5], 1, claim.slice(1)))
      .to.be.revertedWithCustomError(registry, "MalformedClaim").withArgs(4n * windows, 4n * windows - 1n);
    await expect(r.registerClaimedSnapshot(h("t"), [1, 2, 3, 5], 1, "0x"))
      .to.be.revertedWithCustomError(registry, "MalformedClaim").withArgs(4n * windows, 0);
    await expect(r.registerClaimedSnapshot(h("t"), [1, 2, 3, 5], 9, claim))
      .to.be.revertedWithCustomError(registry, "UnknownSnapshot").withArgs(9);
    await expect(r.registerClaimedSnapshot(h("t"), [1, 2, 3, 77], 1, claim))
      .to.be.revertedWithCustomError(registry, "UnknownExpert").withArgs(77);
    await r.registerExpert("layer1.expert1", 1, 1, h("never sent"), 10, [h("never sent")], []); // 6
    await expect(r.registerClaimedSnapshot(h("t"), [1, 2, 3, 6], 1, claim))
      .to.be.revertedWithCustomError(registry, "IncompletePayload").withArgs(6, 0, 1);
    await expect(r.registerClaimedSnapshot(h("t"), [1, 2, 3, 5], 1, claim))
      .to.emit(registry, "SnapshotClaim").withArgs(2, 1, ethers.hexlify(claim));
    const [base, stored] = await registry.snapshotClaim(2);
    expect(base).to.equal(1n);
    expect(stored).to.equal(ethers.hexlify(claim));
    const [none, empty] = await registry.snapshotClaim(1); // genesis: no claim
    expect(none).to.equal(0n);
    expect(empty).to.equal("0x");
    await expect(registry.snapshotClaim(3)).to.be.revertedWithCustomError(registry, "UnknownSnapshot").withArgs(3);
    expect(await registry.scheduleLength()).to.equal(1n);
    expect(await registry.scheduleAt(0)).to.deep.equal([0n, 1n]);
    const e = (await registry.currentEpoch()) + 2n;
    await registry.connect(owner).scheduleSnapshot(2, e);
    expect(await registry.scheduleLength()).to.equal(2n);
    expect(await registry.scheduleAt(1)).to.deep.equal([e, 2n]);
  });

  it("expires an upload that never completes, so its payload can be registered again", async function () {
    const { registry, alice, contributor } = await networkHelpers.loadFixture(fixture);
    const r = registry.connect(alice);
    const bytes = new Uint8Array(CHUNK_BYTES + 10).map((_, i) => (i * 5) % 253);
    const chunks = chunksOf(bytes);
    const hashes = chunks.map((c) => ethers.sha256(c));
    const payload = ethers.sha256(bytes);
    await r.registerExpert("l0e1", 0, 1, payload, bytes.length, hashes, []); // 5
    await r.uploadChunk(5, 0, chunks[0]);
    expect(await registry.uploadExpired(5)).to.equal(false);
    expect(await registry.uploadExpired(1)).to.equal(false); // genesis never expires
    await expect(registry.connect(contributor).registerExpert("l0e1", 0, 1, payload, bytes.length, hashes, []))
      .to.be.revertedWithCustomError(registry, "DuplicatePayload").withArgs(5);
    const window = await registry.UPLOAD_WINDOW();
    await networkHelpers.mine(window + 1n);
    expect(await registry.uploadExpired(5)).to.equal(true);
    const at = await registry.registeredAt(5);
    await expect(r.uploadChunk(5, 1, chunks[1]))
      .to.be.revertedWithCustomError(registry, "UploadExpired").withArgs(5, at);
    await registry.connect(contributor).registerExpert("l0e1", 0, 1, payload, bytes.length, hashes, []); // 6
    expect(await registry.expertByPayload(payload)).to.equal(6n);
    await registry.connect(contributor).uploadChunk(6, 0, chunks[0]);
    await expect(registry.connect(contributor).uploadChunk(6, 1, chunks[1]))
      .to.emit(registry, "PayloadComplete").withArgs(6, payload);
    await expect(registry.connect(contributor).registerExpert("l0e1", 0, 1, payload, bytes.length, hashes, []))
      .to.be.revertedWithCustomError(registry, "DuplicatePayload").withArgs(6);
  });

  it("carries a payload in chunks, hashed by the contract, and refuses bad chunk sequences", async function () {
    const { registry, alice } = await networkHelpers.loadFixture(fixture);
    const r = registry.connect(alice);
    const bytes = new Uint8Array(2 * CHUNK_BYTES + 1234).map((_, i) => (i * 7 + 3) % 251);
    const chunks = chunksOf(bytes);
    const hashes = chunks.map((c) => ethers.sha256(c));
    const payload = ethers.sha256(bytes);
    expect(await registry.chunkCount(bytes.length)).to.equal(3n);
    await expect(r.registerExpert("l0e1", 0, 1, payload, bytes.length, hashes.slice(1), []))
      .to.be.revertedWithCustomError(registry, "WrongChunkCount").withArgs(3, 2);
    await expect(r.registerExpert("l0e1", 0, 1, h("one"), 5, [h("other")], []))
      .to.be.revertedWithCustomError(registry, "PayloadHashMismatch").withArgs(h("one"), h("other"));
    await r.registerExpert("l0e1", 0, 1, payload, bytes.length, hashes, [2]);
    expect(await registry.payloadChunkHashes(5)).to.deep.equal(hashes);
    expect(await registry.payloadComplete(5)).to.equal(false);
    expect(await registry.payloadComplete(1)).to.equal(true); // genesis: the assets
    await expect(r.uploadChunk(5, 1, chunks[1]))
      .to.be.revertedWithCustomError(registry, "ChunkOutOfOrder").withArgs(5, 0, 1);
    await expect(r.uploadChunk(5, 0, chunks[0].slice(1)))
      .to.be.revertedWithCustomError(registry, "WrongChunkSize").withArgs(0, CHUNK_BYTES, CHUNK_BYTES - 1);
    const forged = Uint8Array.from(chunks[0]);
    forged[17] ^= 1;
    await expect(r.uploadChunk(5, 0, forged))
      .to.be.revertedWithCustomError(registry, "ChunkHashMismatch").withArgs(0, hashes[0], ethers.sha256(forged));
    await expect(r.uploadChunk(5, 0, chunks[0])).to.emit(registry, "ChunkUploaded").withArgs(5, 0, hashes[0]);
    await expect(r.uploadChunk(5, 0, chunks[0]))
      .to.be.revertedWithCustomError(registry, "DuplicateChunk").withArgs(5, 0);
    await r.uploadChunk(5, 1, chunks[1]);
    await expect(r.registerSnapshot(h("t"), [1, 5, 3, 4]))
      .to.be.revertedWithCustomError(registry, "IncompletePayload").withArgs(5, 2, 3);
    await expect(r.uploadChunk(5, 2, chunks[2]))
      .to.emit(registry, "PayloadComplete").withArgs(5, payload);
    expect(await registry.chunksReceived(5)).to.equal(3n);
    expect(await registry.payloadComplete(5)).to.equal(true);
    await expect(r.uploadChunk(5, 3, chunks[2]))
      .to.be.revertedWithCustomError(registry, "PayloadAlreadyComplete").withArgs(5);
    await expect(r.uploadChunk(1, 0, chunks[2]))
      .to.be.revertedWithCustomError(registry, "PayloadAlreadyComplete").withArgs(1);
    await expect(r.uploadChunk(99, 0, chunks[2])).to.be.revertedWithCustomError(registry, "UnknownExpert").withArgs(99);
    await expect(r.registerSnapshot(h("t"), [1, 5, 3, 4])).to.emit(registry, "SnapshotRegistered");
  });
});

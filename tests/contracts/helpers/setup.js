// Shared deployment for the contract tests: one Hardhat (EDR) connection, fixtures reused via
// loadFixture snapshots. Parameters mirror the devnet ones at a smaller scale.
import { network } from "hardhat";

export const conn = await network.getOrCreate();
export const { ethers, networkHelpers } = conn;

export const EPOCH_BLOCKS = 32n;
export const UNBONDING_BLOCKS = 50n;
export const VOTING_DELAY = 1n;
export const VOTING_PERIOD = 20n;
export const QUORUM_PERCENT = 4n;
export const TIMELOCK_DELAY = 60n; // seconds
export const LAYERS = 2;
export const EXPERTS = 2;
export const MIN_STAKE = ethers.parseEther("10");
export const BOND = ethers.parseEther("1");
export const CHALLENGE_WINDOW = 10n;
export const ROYALTY_BPS = 1000n;
export const MAX_JOB_BLOCKS = 100n;
export const BURN_ADDRESS = "0x000000000000000000000000000000000000dEaD";

export const h = (s) => ethers.keccak256(ethers.toUtf8Bytes(s));
export const genesisPayloads = () =>
  Array.from({ length: LAYERS * EXPERTS }, (_, i) => h(`genesis-expert-${i}`));
export const GENESIS_TRUNK = h("genesis-trunk");
export const CHUNK_BYTES = 120_000;

/** sha256 of each CHUNK_BYTES-long piece of `bytes` (a Uint8Array). */
export function chunksOf(bytes) {
  const out = [];
  for (let o = 0; o < bytes.length; o += CHUNK_BYTES) out.push(bytes.slice(o, o + CHUNK_BYTES));
  return out;
}

/** Registers an expert carrying `bytes` and uploads every chunk; returns its payload hash. */
export async function registerWithPayload(registry, signer, name, layer, index, bytes, dependsOn) {
  const chunks = chunksOf(bytes);
  const payload = ethers.sha256(bytes);
  const r = registry.connect(signer);
  await r.registerExpert(name, layer, index, payload, bytes.length, chunks.map((c) => ethers.sha256(c)), dependsOn);
  const id = await registry.expertCount();
  for (let k = 0; k < chunks.length; k++) await r.uploadChunk(id, k, chunks[k]);
  return payload;
}
export const GENESIS_DATASET = h("genesis-dataset");
export const GENESIS_KEY = h("genesis-key");

export async function deployRegistry(owner, contributor) {
  const payloads = genesisPayloads();
  return ethers.deployContract("ModelRegistry", [
    owner,
    LAYERS,
    EXPERTS,
    EPOCH_BLOCKS,
    GENESIS_TRUNK,
    payloads,
    payloads.map(() => 1000),
    contributor,
  ]);
}

/** The full system wired as the migrations wire it (timelock owns registry and dataset DAO). */
export async function deploySystem() {
  const [deployer, alice, bob, carol, dave, erin, frank, grace] = await ethers.getSigners();
  const staked = await ethers.deployContract("StakedPOAI", [UNBONDING_BLOCKS]);
  const timelock = await ethers.deployContract("PoAITimelock", [
    TIMELOCK_DELAY,
    [],
    [ethers.ZeroAddress],
    deployer.address,
  ]);
  const governor = await ethers.deployContract("PoAIGovernor", [
    staked,
    timelock,
    VOTING_DELAY,
    VOTING_PERIOD,
    0,
    QUORUM_PERCENT,
  ]);
  await timelock.grantRole(await timelock.PROPOSER_ROLE(), governor);
  await timelock.grantRole(await timelock.CANCELLER_ROLE(), governor);
  await timelock.renounceRole(await timelock.DEFAULT_ADMIN_ROLE(), deployer.address);
  const registry = await deployRegistry(await timelock.getAddress(), await timelock.getAddress());
  const dataset = await ethers.deployContract("DatasetDAO", [
    timelock,
    EPOCH_BLOCKS,
    GENESIS_DATASET,
    1000,
    GENESIS_KEY,
  ]);
  const market = await ethers.deployContract("InferenceMarket", [
    staked,
    registry,
    MIN_STAKE,
    BOND,
    CHALLENGE_WINDOW,
    ROYALTY_BPS,
    MAX_JOB_BLOCKS,
  ]);
  await staked.setMarket(market);
  return {
    deployer, alice, bob, carol, dave, erin, frank, grace,
    staked, timelock, governor, registry, dataset, market,
  };
}

export async function blockNumber() {
  return BigInt(await ethers.provider.getBlockNumber());
}

/** Mines blocks until the chain's next block is the first block of `epoch`. */
export async function mineToEpoch(epoch) {
  const target = BigInt(epoch) * EPOCH_BLOCKS - 1n;
  const now = await blockNumber();
  if (target > now) await networkHelpers.mineUpTo(target);
}

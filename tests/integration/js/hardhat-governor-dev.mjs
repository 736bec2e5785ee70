// Hardhat 3 against a real `poai node --dev`: the node's own unlocked accounts (`accounts:
// "remote"`, so ethers.getSigners() sends eth_sendTransaction) deploy the repo's StakedPOAI,
// PoAITimelock (1 h delay) and PoAIGovernor (3-block vote) from bindings/abi and pass a vote,
// fast-forwarded with hardhat_mine / evm_mine and evm_increaseTime.
import fs from "node:fs";
import path from "node:path";
import { network } from "hardhat";

const artifact = (name) => JSON.parse(fs.readFileSync(path.join(process.env.POAI_ABI_DIR, `${name}.json`), "utf8"));
const ABI = (name) => artifact(name).abi;
const { ethers } = await network.create({ network: "poai", override: { accounts: "remote" } });
const send = (method, params = []) => ethers.provider.send(method, params);
const head = async () => (await ethers.provider.getBlock("latest"));

const signers = await ethers.getSigners();
const [alice] = signers;
const accounts = await send("eth_accounts");
const deploy = async (name, ...args) => {
  const { abi, bytecode } = artifact(name);
  const contract = await new ethers.ContractFactory(abi, bytecode, alice).deploy(...args);
  await contract.waitForDeployment();
  return new ethers.Contract(await contract.getAddress(), ABI(name), alice);
};

// anvil's default: every transaction mined at once (the node was mining once a second).
const interval = await send("anvil_getIntervalMining");
await send("evm_setAutomine", [true]);
const t0 = Date.now();
const staked = await deploy("StakedPOAI", 1);
const timelock = await deploy("PoAITimelock", 3600, [], [ethers.ZeroAddress], alice.address);
const governor = await deploy("PoAIGovernor", await staked.getAddress(), await timelock.getAddress(), 1, 3, 0, 4);
await (await timelock.grantRole(await timelock.PROPOSER_ROLE(), await governor.getAddress())).wait();
const addresses = { PoAITimelock: await timelock.getAddress() };
await (await staked.deposit({ value: ethers.parseEther("1000") })).wait();
await (await staked.delegate(alice.address)).wait();
await send("evm_mine"); // votes are read one block back

// A proposal whose execution is observable: the timelock pays 1 wei to a fresh address.
const target = ethers.Wallet.createRandom().address;
await (await alice.sendTransaction({ to: addresses.PoAITimelock, value: 1n })).wait();
const targets = [target], values = [1n], calldatas = ["0x"];
const description = `pay 1 wei to ${target}`;
const descHash = ethers.id(description);
await (await governor.propose(targets, values, calldatas, description)).wait();
const id = await governor.hashProposal(targets, values, calldatas, descHash);
const delay = await governor.votingDelay();
const period = await governor.votingPeriod();
const states = [await governor.state(id)];

const before = await head();
await send("hardhat_mine", [ethers.toQuantity(delay + 1n)]);
const afterDelay = await head();
states.push(await governor.state(id));
await (await governor.castVote(id, 1)).wait();
await send("hardhat_mine", [ethers.toQuantity(period)]);
states.push(await governor.state(id));
await (await governor.queue(targets, values, calldatas, descHash)).wait();
states.push(await governor.state(id));
let earlyExecute = "executed";
try {
  await governor.execute.staticCall(targets, values, calldatas, descHash);
} catch (err) {
  earlyExecute = err.shortMessage ?? String(err);
}
const minDelay = await timelock.getMinDelay();
const queued = await head();
await send("evm_increaseTime", [Number(minDelay) + 1]);
await send("evm_mine");
const jumped = await head();
await (await governor.execute(targets, values, calldatas, descHash)).wait();
states.push(await governor.state(id));

const seconds = (Date.now() - t0) / 1000;
await send("evm_setIntervalMining", [interval ?? 0]);
console.log(JSON.stringify({
  seconds, automine: await send("anvil_getAutomine"), interval,
  signer: alice.address, accounts, states: states.map(String),
  blocksForDelay: afterDelay.number - before.number, delay: delay.toString(),
  period: period.toString(), earlyExecute, minDelay: minDelay.toString(),
  timeJump: jumped.timestamp - queued.timestamp,
  paid: (await ethers.provider.getBalance(target)).toString(),
}));

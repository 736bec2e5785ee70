// Hardhat 3: deploy Counter through the `poai` network of hardhat.config.js and call it.
// The artifact (abi + bytecode) comes from the Python test (solcx), so this does not depend on
// the state of contracts/.
import fs from "node:fs";
import { network } from "hardhat";

const artifact = JSON.parse(fs.readFileSync(process.env.COUNTER_ARTIFACT, "utf8"));
const { ethers } = await network.connect();
const [signer] = await ethers.getSigners();
const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, signer);
const counter = await factory.deploy();
await counter.waitForDeployment();
const tx = await counter.increment();
const receipt = await tx.wait();
console.log(JSON.stringify({
  address: await counter.getAddress(), count: (await counter.count()).toString(),
  status: receipt.status, chainId: (await ethers.provider.getNetwork()).chainId.toString(),
}));

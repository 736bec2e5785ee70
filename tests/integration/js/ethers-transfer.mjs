// ethers v6: an EIP-1559 transfer through a batching JsonRpcProvider, waited for by receipt.
import { ethers } from "ethers";

const [url, key, to] = process.argv.slice(2);
const provider = new ethers.JsonRpcProvider(url);
const wallet = new ethers.Wallet(key, provider);
const before = await provider.getBalance(to);
const tx = await wallet.sendTransaction({ to, value: ethers.parseEther("1.5") });
const receipt = await tx.wait(1, 120_000);
const after = await provider.getBalance(to);
const fee = await provider.getFeeData();
console.log(JSON.stringify({
  hash: tx.hash, type: tx.type, status: receipt.status, block: receipt.blockNumber,
  gasUsed: receipt.gasUsed.toString(), delta: (after - before).toString(),
  maxFeePerGas: fee.maxFeePerGas?.toString() ?? null,
  chainId: (await provider.getNetwork()).chainId.toString(),
}));
provider.destroy();

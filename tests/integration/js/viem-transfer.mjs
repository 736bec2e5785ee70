// viem: an EIP-1559 transfer (viem tries eth_fillTransaction first and falls back on -32601).
import { createPublicClient, createWalletClient, defineChain, http, parseEther } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const [url, key, to, chainId] = process.argv.slice(2);
const chain = defineChain({
  id: Number(chainId), name: "PoAI devnet",
  nativeCurrency: { name: "POAI", symbol: "POAI", decimals: 18 },
  rpcUrls: { default: { http: [url] } },
});
const account = privateKeyToAccount(key);
const wallet = createWalletClient({ account, chain, transport: http(url) });
const client = createPublicClient({ chain, transport: http(url) });
const before = await client.getBalance({ address: to });
const hash = await wallet.sendTransaction({ to, value: parseEther("0.25") });
const receipt = await client.waitForTransactionReceipt({ hash, timeout: 120_000 });
const after = await client.getBalance({ address: to });
const tx = await client.getTransaction({ hash });
console.log(JSON.stringify({
  hash, status: receipt.status, type: receipt.type, txType: tx.type,
  block: receipt.blockNumber.toString(), delta: (after - before).toString(),
}));

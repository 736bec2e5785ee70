// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {StakedPOAI} from "../governance/StakedPOAI.sol";
import {ModelRegistry} from "../registry/ModelRegistry.sol";
import {InferenceCheck} from "./InferenceCheck.sol";

/// @title InferenceMarket
/// @notice Paid inference with stake at risk, disputes settled by the chain itself. A buyer posts
/// a prompt (calldata and event; storage keeps its hash) with integer decoding parameters and a
/// native fee for the ACTIVE model snapshot; a registered worker claims it (locking
/// `minWorkerStake` of its sPOAI behind the job) and commits the output tokens (2 bytes each,
/// big-endian; calldata and event) with the experts it routed to and how many tokens each got.
/// After `challengeWindow` blocks the fee is paid out: `royaltyBps` of it to the used experts'
/// contributors in proportion to the committed counts, the rest to the worker. Within the window
/// anyone may `challenge` with `challengeBond`: the contract replays the job through the
/// INFERENCE_CHECK precompile (every validator runs the same teacher-forced forward pass), which
/// says whether every token follows the decoding rule and the counts are the routed ones.
/// Fraud: 90% of the locked stake burnt, 10% to the challenger, the fee back to the buyer, the
/// bond back, the worker banned. No fraud: the bond goes to the worker and the job is paid out.
/// @dev All payouts are credited to `pendingOf` and pulled with `withdraw` (the one exception is
/// the burnt share, pushed to the code-less BURN_ADDRESS). Block numbers throughout.
/// Invariant: address(this).balance == totalEscrow + totalPending.
contract InferenceMarket is ReentrancyGuard {
    enum Status {
        None,
        Open,
        Claimed,
        Committed,
        Finalized,
        Refunded,
        Fraud
    }

    struct Job {
        address buyer;
        address worker;
        address challenger; // set once: a job is challenged at most once
        Status status;
        uint32 maxTokens;
        uint32 temperatureMilli;
        uint32 topPMicro;
        uint64 seed;
        uint256 snapshotId;
        bytes32 promptHash;
        uint256 fee;
        uint256 deadline; // last block to claim and commit
        bytes32 outputHash;
        uint256 committedAt;
        uint256 stakeLocked;
        uint256[] expertIds;
        uint256[] counts;
    }

    struct Worker {
        bool registered;
        bool banned;
        uint256 openJobs;
    }

    address public constant BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;
    uint256 public constant BPS = 10_000;
    uint256 public constant BURN_BPS = 9_000; // of a slashed stake; the rest goes to the challenger
    uint256 public constant MAX_EXPERTS_USED = 64;
    uint256 public constant MAX_TEMPERATURE_MILLI = InferenceCheck.MAX_TEMPERATURE_MILLI;
    uint256 public constant MAX_TOP_P_MICRO = InferenceCheck.TOP_P_ONE;
    uint256 public constant MAX_PROMPT_BYTES = InferenceCheck.MAX_PROMPT_BYTES;
    uint256 public constant MAX_OUTPUT_TOKENS = InferenceCheck.MAX_OUTPUT_TOKENS;
    uint256 public constant VOCAB_SIZE = 259; // the chain model's byte vocabulary (+ PAD, BOS, EOS)

    StakedPOAI public immutable staked;
    ModelRegistry public immutable registry;
    uint256 public immutable minWorkerStake;
    uint256 public immutable challengeBond;
    uint256 public immutable challengeWindow; // blocks after commit
    uint256 public immutable royaltyBps; // of a fee, to expert contributors
    uint256 public immutable maxJobBlocks; // furthest deadline from posting

    mapping(uint256 jobId => Job) private _jobs;
    mapping(address worker => Worker) public workers;
    mapping(address account => uint256) public pendingOf;
    uint256 public jobCount;
    uint256 public totalEscrow; // fees of live jobs
    uint256 public totalPending; // credited, not yet withdrawn
    uint256 public totalBurnt;

    event WorkerRegistered(address indexed worker);
    event WorkerDeregistered(address indexed worker);
    event JobPosted(
        uint256 indexed jobId,
        address indexed buyer,
        uint256 indexed snapshotId,
        uint256 fee,
        uint256 deadline,
        bytes prompt,
        uint256 maxTokens,
        uint256 temperatureMilli,
        uint256 topPMicro,
        uint256 seed
    );
    event JobCancelled(uint256 indexed jobId);
    event JobClaimed(uint256 indexed jobId, address indexed worker, uint256 stakeLocked);
    event ResultCommitted(
        uint256 indexed jobId, address indexed worker, bytes outputTokens, uint256[] expertIds, uint256[] counts
    );
    event JobRefunded(uint256 indexed jobId, uint256 fee);
    event JobFinalized(uint256 indexed jobId, uint256 workerPay, uint256 royaltyPaid);
    event RoyaltyCredited(uint256 indexed jobId, uint256 indexed expertId, address indexed contributor, uint256 amount);
    /// @notice The precompile's verdict on a challenged job: fault 0 = the result holds, else the
    /// InferenceCheck fault (1 wrong token, 2 wrong end, 3 wrong counts) at output `index`.
    event ChallengeSettled(uint256 indexed jobId, address indexed challenger, uint256 fault, uint256 index);
    event WorkerSlashed(uint256 indexed jobId, address indexed worker, uint256 amount, uint256 burnt, uint256 reward);
    event Withdrawn(address indexed account, uint256 amount);

    error InvalidParams();
    error AlreadyRegistered();
    error NotRegistered();
    error WorkerBanned();
    error InsufficientStake(uint256 available, uint256 needed);
    error HasOpenJobs();
    error ZeroFee();
    error SnapshotNotActive(uint256 snapshotId, uint256 activeSnapshotId);
    error EmptyPrompt();
    error PromptTooLong(uint256 length, uint256 maxLength);
    error MaxTokensOutOfRange(uint256 maxTokens, uint256 limit);
    error TemperatureOutOfRange(uint256 temperatureMilli, uint256 limit);
    error TopPOutOfRange(uint256 topPMicro, uint256 limit);
    error SeedOutOfRange(uint256 seed);
    error BadDeadline();
    error UnknownJob(uint256 jobId);
    error WrongStatus(Status status);
    error NotBuyer();
    error NotWorker();
    error DeadlinePassed();
    error DeadlineNotPassed();
    error BadOutputLength(uint256 byteLength, uint256 maxTokens);
    error TokenOutsideVocabulary(uint256 index, uint256 token);
    error BadExperts();
    error ExpertNotInSnapshot(uint256 expertId);
    error WrongBond(uint256 expected);
    error ChallengeWindowClosed(uint256 lastBlock);
    error ChallengeWindowOpen(uint256 lastBlock);
    error AlreadyChallenged(address challenger);
    error SelfChallenge();
    error PromptMismatch();
    error OutputMismatch();
    error CheckGasTooLow(uint256 needed, uint256 available);
    error NothingToWithdraw();
    error UnexpectedPayment();

    constructor(
        StakedPOAI staked_,
        ModelRegistry registry_,
        uint256 minWorkerStake_,
        uint256 challengeBond_,
        uint256 challengeWindow_,
        uint256 royaltyBps_,
        uint256 maxJobBlocks_
    ) {
        if (
            address(staked_) == address(0) || address(registry_) == address(0) || minWorkerStake_ == 0
                || challengeBond_ == 0 || challengeWindow_ == 0 || royaltyBps_ > BPS || maxJobBlocks_ == 0
        ) revert InvalidParams();
        staked = staked_;
        registry = registry_;
        minWorkerStake = minWorkerStake_;
        challengeBond = challengeBond_;
        challengeWindow = challengeWindow_;
        royaltyBps = royaltyBps_;
        maxJobBlocks = maxJobBlocks_;
    }

    /// @notice Only StakedPOAI sends native POAI here unasked: the proceeds of a slash.
    receive() external payable {
        if (msg.sender != address(staked)) revert UnexpectedPayment();
    }

    // ---- workers ---------------------------------------------------------------------------

    function registerWorker() external {
        Worker storage w = workers[msg.sender];
        if (w.banned) revert WorkerBanned();
        if (w.registered) revert AlreadyRegistered();
        uint256 available = staked.balanceOf(msg.sender) - staked.lockedOf(msg.sender);
        if (available < minWorkerStake) revert InsufficientStake(available, minWorkerStake);
        w.registered = true;
        emit WorkerRegistered(msg.sender);
    }

    function deregisterWorker() external {
        Worker storage w = workers[msg.sender];
        if (!w.registered) revert NotRegistered();
        if (w.openJobs != 0) revert HasOpenJobs();
        w.registered = false;
        emit WorkerDeregistered(msg.sender);
    }

    // ---- jobs ------------------------------------------------------------------------------

    /// @notice The snapshot a job must name: the one ModelRegistry makes active this epoch.
    function activeSnapshot() public view returns (uint256) {
        return registry.activeSnapshot(registry.currentEpoch());
    }

    /// @notice Posts a job; msg.value is the fee, escrowed until payout or refund. `prompt` is
    /// UTF-8 bytes (= the model's byte tokens); temperatureMilli 0 decodes greedily.
    function postJob(
        uint256 snapshotId,
        bytes calldata prompt,
        uint256 maxTokens,
        uint256 temperatureMilli,
        uint256 topPMicro,
        uint256 seed,
        uint256 deadline
    ) external payable returns (uint256 jobId) {
        if (msg.value == 0) revert ZeroFee();
        uint256 active = activeSnapshot();
        if (snapshotId != active) revert SnapshotNotActive(snapshotId, active);
        if (prompt.length == 0) revert EmptyPrompt();
        if (prompt.length > InferenceCheck.MAX_PROMPT_BYTES) {
            revert PromptTooLong(prompt.length, InferenceCheck.MAX_PROMPT_BYTES);
        }
        if (maxTokens == 0 || maxTokens > InferenceCheck.MAX_OUTPUT_TOKENS) {
            revert MaxTokensOutOfRange(maxTokens, InferenceCheck.MAX_OUTPUT_TOKENS);
        }
        if (temperatureMilli > MAX_TEMPERATURE_MILLI) {
            revert TemperatureOutOfRange(temperatureMilli, MAX_TEMPERATURE_MILLI);
        }
        if (topPMicro == 0 || topPMicro > MAX_TOP_P_MICRO) revert TopPOutOfRange(topPMicro, MAX_TOP_P_MICRO);
        if (seed > type(uint64).max) revert SeedOutOfRange(seed);
        if (deadline <= block.number || deadline > block.number + maxJobBlocks) revert BadDeadline();
        jobId = ++jobCount;
        Job storage j = _jobs[jobId];
        j.buyer = msg.sender;
        j.status = Status.Open;
        j.maxTokens = uint32(maxTokens);
        j.temperatureMilli = uint32(temperatureMilli);
        j.topPMicro = uint32(topPMicro);
        j.seed = uint64(seed);
        j.snapshotId = snapshotId;
        j.promptHash = keccak256(prompt);
        j.fee = msg.value;
        j.deadline = deadline;
        totalEscrow += msg.value;
        emit JobPosted(
            jobId, msg.sender, snapshotId, msg.value, deadline, prompt, maxTokens, temperatureMilli, topPMicro, seed
        );
    }

    /// @notice The buyer withdraws an unclaimed job; the fee is credited back.
    function cancelJob(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Open) revert WrongStatus(j.status);
        if (msg.sender != j.buyer) revert NotBuyer();
        j.status = Status.Refunded;
        _release(j.fee, j.buyer);
        emit JobCancelled(jobId);
    }

    /// @notice A registered worker takes an open job, locking `minWorkerStake` sPOAI behind it.
    function claimJob(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Open) revert WrongStatus(j.status);
        if (block.number > j.deadline) revert DeadlinePassed();
        Worker storage w = workers[msg.sender];
        if (w.banned) revert WorkerBanned();
        if (!w.registered) revert NotRegistered();
        j.status = Status.Claimed;
        j.worker = msg.sender;
        j.stakeLocked = minWorkerStake;
        w.openJobs += 1;
        emit JobClaimed(jobId, msg.sender, minWorkerStake);
        staked.lock(msg.sender, minWorkerStake); // reverts when the unlocked stake is short
    }

    /// @notice The worker commits the output tokens (2 bytes each, big-endian, at most the job's
    /// maxTokens, each < VOCAB_SIZE) and the experts it routed to with their routed-token counts
    /// (`expertIds` strictly increasing, each in the job's snapshot, counts > 0).
    function commitResult(
        uint256 jobId,
        bytes calldata outputTokens,
        uint256[] calldata expertIds,
        uint256[] calldata counts
    ) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Claimed) revert WrongStatus(j.status);
        if (msg.sender != j.worker) revert NotWorker();
        if (block.number > j.deadline) revert DeadlinePassed();
        uint256 len = outputTokens.length;
        if (len == 0 || len % 2 != 0 || len / 2 > j.maxTokens) revert BadOutputLength(len, j.maxTokens);
        for (uint256 i = 0; i < len; i += 2) {
            uint256 token = (uint256(uint8(outputTokens[i])) << 8) | uint256(uint8(outputTokens[i + 1]));
            if (token >= VOCAB_SIZE) revert TokenOutsideVocabulary(i / 2, token);
        }
        uint256 n = expertIds.length;
        if (n == 0 || n > MAX_EXPERTS_USED || counts.length != n) revert BadExperts();
        uint256 previous = 0;
        for (uint256 k = 0; k < n; ++k) {
            if (expertIds[k] <= previous || counts[k] == 0) revert BadExperts();
            if (!registry.isExpertInSnapshot(j.snapshotId, expertIds[k])) revert ExpertNotInSnapshot(expertIds[k]);
            previous = expertIds[k];
        }
        j.status = Status.Committed;
        j.outputHash = keccak256(outputTokens);
        j.committedAt = block.number;
        j.expertIds = expertIds;
        j.counts = counts;
        emit ResultCommitted(jobId, msg.sender, outputTokens, expertIds, counts);
    }

    /// @notice Anyone refunds a job nobody served by its deadline; a claimer's stake is unlocked
    /// (missing a deadline costs the worker the job, not its stake).
    function refund(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Open && j.status != Status.Claimed) revert WrongStatus(j.status);
        if (block.number <= j.deadline) revert DeadlineNotPassed();
        bool claimed = j.status == Status.Claimed;
        j.status = Status.Refunded;
        _release(j.fee, j.buyer);
        emit JobRefunded(jobId, j.fee);
        if (claimed) _releaseWorker(j);
    }

    /// @notice Anyone finalizes an unchallenged result once the challenge window has passed.
    function finalize(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Committed) revert WrongStatus(j.status);
        uint256 lastBlock = j.committedAt + challengeWindow;
        if (block.number <= lastBlock) revert ChallengeWindowOpen(lastBlock);
        _payOut(jobId, j);
    }

    // ---- disputes --------------------------------------------------------------------------

    /// @notice Disputes a committed result within the window (msg.value == `challengeBond`): the
    /// job is replayed by the INFERENCE_CHECK precompile and settled at once by its verdict.
    /// `prompt` and `outputTokens` are the job's (from its events); they must hash to the stored
    /// hashes.
    function challenge(uint256 jobId, bytes calldata prompt, bytes calldata outputTokens)
        external
        payable
        nonReentrant
    {
        Job storage j = _job(jobId);
        if (j.challenger != address(0)) revert AlreadyChallenged(j.challenger);
        if (j.status != Status.Committed) revert WrongStatus(j.status);
        uint256 lastBlock = j.committedAt + challengeWindow;
        if (block.number > lastBlock) revert ChallengeWindowClosed(lastBlock);
        if (msg.sender == j.worker) revert SelfChallenge();
        if (msg.value != challengeBond) revert WrongBond(challengeBond);
        if (keccak256(prompt) != j.promptHash) revert PromptMismatch();
        if (keccak256(outputTokens) != j.outputHash) revert OutputMismatch();
        j.challenger = msg.sender;
        totalEscrow += msg.value;
        uint256 fault = _check(jobId, prompt, outputTokens);
        if (fault != 0) {
            _punish(jobId, j);
        } else {
            _release(msg.value, j.worker);
            _payOut(jobId, j);
        }
    }

    // ---- pull payments ---------------------------------------------------------------------

    function withdraw() external nonReentrant {
        uint256 amount = pendingOf[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        pendingOf[msg.sender] = 0;
        totalPending -= amount;
        emit Withdrawn(msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    // ---- views -----------------------------------------------------------------------------

    function job(uint256 jobId) external view returns (Job memory) {
        return _job(jobId);
    }

    // ---- internals -------------------------------------------------------------------------

    function _job(uint256 jobId) private view returns (Job storage j) {
        j = _jobs[jobId];
        if (j.status == Status.None) revert UnknownJob(jobId);
    }

    /// Runs the precompile on the job; returns its fault (0: the result holds) and logs it.
    function _check(uint256 jobId, bytes calldata prompt, bytes calldata outputTokens) private returns (uint256) {
        Job storage j = _jobs[jobId];
        bytes memory input = InferenceCheck.encodeCall(
            j.snapshotId, prompt, j.maxTokens, j.temperatureMilli, j.topPMicro, j.seed, outputTokens, j.expertIds, j.counts
        );
        uint256 tokens = outputTokens.length / 2;
        uint256 gasNeeded = InferenceCheck.gasFor(prompt.length, tokens);
        // The call gets at most 63/64 of what is left (EIP-150): refuse up front rather than
        // let a short-gassed call read as a failed check.
        if (gasleft() < gasNeeded + gasNeeded / 63 + 100_000) revert CheckGasTooLow(gasNeeded, gasleft());
        (uint256 fault, uint256 index,,) = InferenceCheck.check(input, prompt.length, tokens);
        emit ChallengeSettled(jobId, msg.sender, fault, index);
        return fault;
    }

    /// Moves `amount` from escrow to `to`'s withdrawable balance.
    function _release(uint256 amount, address to) private {
        totalEscrow -= amount;
        pendingOf[to] += amount;
        totalPending += amount;
    }

    function _releaseWorker(Job storage j) private {
        workers[j.worker].openJobs -= 1;
        staked.unlock(j.worker, j.stakeLocked);
    }

    function _payOut(uint256 jobId, Job storage j) private {
        j.status = Status.Finalized;
        uint256 royalty = (j.fee * royaltyBps) / BPS;
        uint256 totalUse = 0;
        uint256 n = j.expertIds.length;
        for (uint256 k = 0; k < n; ++k) {
            totalUse += j.counts[k];
        }
        uint256 paid = 0;
        for (uint256 k = 0; k < n; ++k) {
            uint256 share = (royalty * j.counts[k]) / totalUse;
            if (share == 0) continue;
            address contributor = registry.expert(j.expertIds[k]).contributor;
            _release(share, contributor);
            paid += share;
            emit RoyaltyCredited(jobId, j.expertIds[k], contributor, share);
        }
        // Rounding dust of the royalty goes to the worker, so the fee is paid out exactly.
        uint256 workerPay = j.fee - paid;
        _release(workerPay, j.worker);
        emit JobFinalized(jobId, workerPay, paid);
        _releaseWorker(j);
    }

    function _punish(uint256 jobId, Job storage j) private {
        j.status = Status.Fraud;
        Worker storage w = workers[j.worker];
        w.openJobs -= 1;
        w.banned = true;
        w.registered = false;
        _release(j.fee, j.buyer);
        _release(challengeBond, j.challenger);
        uint256 amount = j.stakeLocked;
        uint256 burnt = (amount * BURN_BPS) / BPS;
        uint256 reward = amount - burnt;
        // The slash proceeds arrive through receive(); credit the reward, push the burn.
        staked.slash(j.worker, amount);
        pendingOf[j.challenger] += reward;
        totalPending += reward;
        totalBurnt += burnt;
        emit WorkerSlashed(jobId, j.worker, amount, burnt, reward);
        Address.sendValue(payable(BURN_ADDRESS), burnt);
    }
}

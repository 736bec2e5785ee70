// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

/// @title ModelRegistry
/// @notice The model as a graph of content-addressed experts. Anyone registers an expert (one
/// layer's expert slot, its blob's sha256 and size, the entries it improves on) and anyone
/// registers a snapshot (trunk blob + one expert per slot of the fixed model shape). Only the
/// owner (the governance timelock) schedules a snapshot to become active at a future epoch.
/// An expert's bytes travel in calldata: `registerExpert` declares the payload's sha256, size
/// and the sha256 of each CHUNK_BYTES-long chunk; `uploadChunk` then carries each chunk in order,
/// and the contract hashes every chunk itself (the SHA-256 precompile) against its declaration.
/// A single-chunk payload's hash is the chunk's hash, so the contract computes it itself; a
/// multi-chunk payload's full hash cannot be computed on chain (the precompile hashes one
/// buffer), so nodes verify it when they assemble the chunks. Only experts whose every chunk
/// arrived may be named by a snapshot. Genesis experts are complete by construction (their
/// bytes are the genesis assets every node holds).
/// Quality claims: `registerClaimedSnapshot` stores a snapshot's claimed validation figures, the
/// quantized per-window losses of the public validation set (GATE_WINDOWS windows on the quiz's
/// grid) of a base snapshot and of the new one. The contract only checks the claim's form; every
/// node recomputes it when the snapshot's activation epoch begins and keeps the previous snapshot
/// unless the claim holds and its improvement reaches the chain's minimum (the quality gate).
/// Abandoned uploads are bounded: a registration whose payload is not complete UPLOAD_WINDOW
/// blocks after it was registered expires (its chunks are refused) and the payload hash may be
/// registered again.
/// @dev Expert and snapshot ids start at 1; 0 means "none". `dependsOn` may only name existing
/// entries, so the graph is acyclic by construction. Epoch = block.number / epochBlocks.
contract ModelRegistry is Ownable {
    using Checkpoints for Checkpoints.Trace208;

    struct Expert {
        string name;
        uint16 layer;
        uint16 index;
        bytes32 payloadHash;
        uint64 size;
        address contributor;
        uint256[] dependsOn;
    }

    struct Snapshot {
        bytes32 trunkHash;
        address registrant;
        uint256[] experts; // slot l * expertsPerLayer + i holds expert i of layer l
    }

    uint256 public constant MAX_DEPENDS = 8;
    uint256 public constant MAX_LINEAGE = 256;
    uint256 public constant MAX_NAME_BYTES = 64;
    /// Chunk length: one chunk's transaction stays under the 128 KiB transaction size limit
    /// of the pool and P2P gossip (geth's txMaxSize), with room for the ABI envelope.
    uint256 public constant CHUNK_BYTES = 120_000;
    /// Validation windows of a quality claim; a claim is 2 * GATE_WINDOWS uint16 big-endian
    /// values: the base snapshot's, then the new snapshot's.
    uint256 public constant GATE_WINDOWS = 256;
    uint256 public constant CLAIM_BYTES = 4 * GATE_WINDOWS;
    /// Blocks an expert's upload may take before the registration expires (~24 h at 4 s).
    uint256 public constant UPLOAD_WINDOW = 21_600;

    uint16 public immutable layers;
    uint16 public immutable expertsPerLayer;
    uint256 public immutable epochBlocks;

    Expert[] private _experts; // index id - 1
    Snapshot[] private _snapshots; // index id - 1
    mapping(bytes32 payloadHash => uint256 expertId) public expertByPayload;
    mapping(uint256 snapshotId => mapping(uint256 expertId => bool)) public isExpertInSnapshot;
    mapping(uint256 expertId => bytes32[]) private _chunkHashes;
    /// chunks received so far of an expert registered after genesis (in order)
    mapping(uint256 expertId => uint256) public chunksReceived;
    uint256 private _genesisExperts;
    /// block of each registration (expires when incomplete after UPLOAD_WINDOW blocks)
    mapping(uint256 expertId => uint256) public registeredAt;
    mapping(uint256 snapshotId => uint256) private _claimBase;
    mapping(uint256 snapshotId => bytes) private _claims;
    /// activation epoch => snapshot id; keys never decrease.
    Checkpoints.Trace208 private _schedule;

    event ExpertRegistered(
        uint256 indexed expertId,
        uint16 indexed layer,
        uint16 index,
        bytes32 payloadHash,
        uint64 size,
        address indexed contributor,
        uint256[] dependsOn,
        string name
    );
    event ChunkUploaded(uint256 indexed expertId, uint256 chunkIndex, bytes32 chunkHash);
    event PayloadComplete(uint256 indexed expertId, bytes32 payloadHash);
    event SnapshotRegistered(uint256 indexed snapshotId, bytes32 trunkHash, address indexed registrant);
    event SnapshotScheduled(uint256 indexed snapshotId, uint256 indexed activationEpoch);
    event SnapshotClaim(uint256 indexed snapshotId, uint256 indexed baseSnapshotId, bytes claim);

    error InvalidShape();
    error InvalidEpochBlocks();
    error LayerOutOfRange(uint16 layer);
    error IndexOutOfRange(uint16 index);
    error ZeroPayloadHash();
    error ZeroSize();
    error DuplicatePayload(uint256 existingExpertId);
    error TooManyDependencies();
    error UnknownExpert(uint256 expertId);
    error UnknownSnapshot(uint256 snapshotId);
    error InvalidName();
    error ZeroTrunkHash();
    error WrongExpertCount(uint256 expected, uint256 got);
    error SlotMismatch(uint256 slot, uint256 expertId);
    error EpochNotInFuture(uint256 activationEpoch, uint256 currentEpoch);
    error EpochBeforeLastScheduled(uint256 activationEpoch, uint256 lastScheduled);
    error GenesisMismatch();
    error LineageTooLong();
    error WrongChunkCount(uint256 expected, uint256 got);
    error PayloadHashMismatch(bytes32 declared, bytes32 chunkHash);
    error PayloadAlreadyComplete(uint256 expertId);
    error DuplicateChunk(uint256 expertId, uint256 chunkIndex);
    error ChunkOutOfOrder(uint256 expertId, uint256 expected, uint256 got);
    error WrongChunkSize(uint256 chunkIndex, uint256 expected, uint256 got);
    error ChunkHashMismatch(uint256 chunkIndex, bytes32 expected, bytes32 got);
    error IncompletePayload(uint256 expertId, uint256 chunksReceived, uint256 chunks);
    error MalformedClaim(uint256 expectedBytes, uint256 gotBytes);
    error UploadExpired(uint256 expertId, uint256 registeredAt);

    /// @param owner_ the governance timelock
    /// @param genesisContributor credited (royalties) for the genesis experts
    /// @param genesisPayloads expert blob hashes of the genesis model in slot order
    constructor(
        address owner_,
        uint16 layers_,
        uint16 expertsPerLayer_,
        uint256 epochBlocks_,
        bytes32 genesisTrunkHash,
        bytes32[] memory genesisPayloads,
        uint64[] memory genesisSizes,
        address genesisContributor
    ) Ownable(owner_) {
        if (layers_ == 0 || expertsPerLayer_ == 0) revert InvalidShape();
        if (epochBlocks_ == 0) revert InvalidEpochBlocks();
        layers = layers_;
        expertsPerLayer = expertsPerLayer_;
        epochBlocks = epochBlocks_;
        uint256 slots = uint256(layers_) * expertsPerLayer_;
        if (genesisPayloads.length != slots || genesisSizes.length != slots) revert GenesisMismatch();
        uint256[] memory ids = new uint256[](slots);
        uint256[] memory none = new uint256[](0);
        for (uint256 s = 0; s < slots; ++s) {
            uint16 l = SafeCast.toUint16(s / expertsPerLayer_);
            uint16 i = SafeCast.toUint16(s % expertsPerLayer_);
            string memory name =
                string.concat("layer", Strings.toString(l), ".expert", Strings.toString(i));
            ids[s] = _registerExpert(name, l, i, genesisPayloads[s], genesisSizes[s], none, genesisContributor);
        }
        _genesisExperts = slots;
        uint256 genesisId = _registerSnapshot(genesisTrunkHash, ids, genesisContributor);
        _schedule.push(0, SafeCast.toUint208(genesisId));
        emit SnapshotScheduled(genesisId, 0);
    }

    // ---- writes ----------------------------------------------------------------------------

    /// @notice Registers an expert; the caller is its contributor (paid royalties on use).
    /// `chunkHashes[k]` is the sha256 of bytes [k * CHUNK_BYTES, (k+1) * CHUNK_BYTES) of the
    /// payload; then `uploadChunk` carries each chunk.
    function registerExpert(
        string calldata name,
        uint16 layer,
        uint16 index,
        bytes32 payloadHash,
        uint64 size,
        bytes32[] calldata chunkHashes,
        uint256[] calldata dependsOn
    ) external returns (uint256 expertId) {
        uint256 chunks = chunkCount(size);
        if (chunkHashes.length != chunks) revert WrongChunkCount(chunks, chunkHashes.length);
        if (chunks == 1 && chunkHashes[0] != payloadHash) revert PayloadHashMismatch(payloadHash, chunkHashes[0]);
        expertId = _registerExpert(name, layer, index, payloadHash, size, dependsOn, msg.sender);
        _chunkHashes[expertId] = chunkHashes;
        registeredAt[expertId] = block.number;
    }

    /// @notice Carries chunk `chunkIndex` of an expert's payload (anyone may send it; chunks
    /// go in order, each once). The contract hashes the bytes against the declaration.
    function uploadChunk(uint256 expertId, uint256 chunkIndex, bytes calldata data) external {
        Expert storage e = _expert(expertId);
        bytes32[] storage hashes = _chunkHashes[expertId];
        uint256 received = chunksReceived[expertId];
        if (received == hashes.length) revert PayloadAlreadyComplete(expertId);
        if (chunkIndex < received) revert DuplicateChunk(expertId, chunkIndex);
        if (chunkIndex > received) revert ChunkOutOfOrder(expertId, received, chunkIndex);
        if (uploadExpired(expertId)) revert UploadExpired(expertId, registeredAt[expertId]);
        uint256 want = chunkIndex + 1 < hashes.length ? CHUNK_BYTES : e.size - chunkIndex * CHUNK_BYTES;
        if (data.length != want) revert WrongChunkSize(chunkIndex, want, data.length);
        bytes32 got = sha256(data);
        if (got != hashes[chunkIndex]) revert ChunkHashMismatch(chunkIndex, hashes[chunkIndex], got);
        chunksReceived[expertId] = received + 1;
        emit ChunkUploaded(expertId, chunkIndex, got);
        if (received + 1 == hashes.length) emit PayloadComplete(expertId, e.payloadHash);
    }

    /// @notice Registers a snapshot: a trunk blob plus one registered expert per slot.
    function registerSnapshot(bytes32 trunkHash, uint256[] calldata expertIds)
        external
        returns (uint256 snapshotId)
    {
        return _registerSnapshot(trunkHash, expertIds, msg.sender);
    }

    /// @notice Registers a snapshot with its quality claim: `claim` holds GATE_WINDOWS uint16
    /// (big-endian) quantized validation losses of `baseSnapshotId`, then GATE_WINDOWS of the new
    /// snapshot (q = the loss times 2^gridBits, rounded to nearest). The claimed improvement is
    /// the mean of the first half minus the mean of the second.
    function registerClaimedSnapshot(
        bytes32 trunkHash,
        uint256[] calldata expertIds,
        uint256 baseSnapshotId,
        bytes calldata claim
    ) external returns (uint256 snapshotId) {
        _snapshot(baseSnapshotId);
        if (claim.length != CLAIM_BYTES) revert MalformedClaim(CLAIM_BYTES, claim.length);
        snapshotId = _registerSnapshot(trunkHash, expertIds, msg.sender);
        _claimBase[snapshotId] = baseSnapshotId;
        _claims[snapshotId] = claim;
        emit SnapshotClaim(snapshotId, baseSnapshotId, claim);
    }

    /// @notice Makes `snapshotId` the active snapshot from `activationEpoch` on (timelock only).
    /// The epoch must be in the future and not before the last one scheduled; scheduling the
    /// same epoch again replaces that pending choice.
    function scheduleSnapshot(uint256 snapshotId, uint256 activationEpoch) external onlyOwner {
        if (snapshotId == 0 || snapshotId > _snapshots.length) revert UnknownSnapshot(snapshotId);
        uint256 nowEpoch = currentEpoch();
        if (activationEpoch <= nowEpoch) revert EpochNotInFuture(activationEpoch, nowEpoch);
        (, uint48 lastKey,) = _schedule.latestCheckpoint();
        if (activationEpoch < lastKey) revert EpochBeforeLastScheduled(activationEpoch, lastKey);
        _schedule.push(SafeCast.toUint48(activationEpoch), SafeCast.toUint208(snapshotId));
        emit SnapshotScheduled(snapshotId, activationEpoch);
    }

    // ---- views the node reads --------------------------------------------------------------

    /// @notice Chunks of a payload of `size` bytes.
    function chunkCount(uint64 size) public pure returns (uint256) {
        return (uint256(size) + CHUNK_BYTES - 1) / CHUNK_BYTES;
    }

    /// @notice The declared sha256 of each chunk (empty for genesis experts).
    function payloadChunkHashes(uint256 expertId) external view returns (bytes32[] memory) {
        _expert(expertId);
        return _chunkHashes[expertId];
    }

    /// @notice Whether every byte of the expert's payload is on chain (genesis: the assets).
    function payloadComplete(uint256 expertId) public view returns (bool) {
        _expert(expertId);
        return expertId <= _genesisExperts || chunksReceived[expertId] == _chunkHashes[expertId].length;
    }

    /// @notice Whether an expert's upload expired unfinished (genesis experts never expire).
    function uploadExpired(uint256 expertId) public view returns (bool) {
        return expertId > _genesisExperts && !payloadComplete(expertId)
            && block.number > registeredAt[expertId] + UPLOAD_WINDOW;
    }

    /// @notice A snapshot's quality claim: (base snapshot, claim bytes); (0, "") when none.
    function snapshotClaim(uint256 snapshotId) external view returns (uint256, bytes memory) {
        _snapshot(snapshotId);
        return (_claimBase[snapshotId], _claims[snapshotId]);
    }

    /// @notice Entries of the activation schedule (the first is the genesis snapshot at 0).
    function scheduleLength() external view returns (uint256) {
        return _schedule.length();
    }

    /// @notice Schedule entry `pos`: (activation epoch, snapshot id), epochs non-decreasing.
    function scheduleAt(uint256 pos) external view returns (uint256, uint256) {
        Checkpoints.Checkpoint208 memory c = _schedule.at(SafeCast.toUint32(pos));
        return (c._key, c._value);
    }

    function currentEpoch() public view returns (uint256) {
        return block.number / epochBlocks;
    }

    /// @notice The snapshot active at `epoch` (the latest scheduled at or before it).
    function activeSnapshot(uint256 epoch) external view returns (uint256) {
        return _schedule.upperLookup(SafeCast.toUint48(epoch));
    }

    function expertCount() external view returns (uint256) {
        return _experts.length;
    }

    function snapshotCount() external view returns (uint256) {
        return _snapshots.length;
    }

    function expert(uint256 expertId) external view returns (Expert memory) {
        return _expert(expertId);
    }

    function snapshot(uint256 snapshotId) external view returns (Snapshot memory) {
        return _snapshot(snapshotId);
    }

    function snapshotExperts(uint256 snapshotId) external view returns (uint256[] memory) {
        return _snapshot(snapshotId).experts;
    }

    /// @notice Every ancestor of `expertId` through `dependsOn`, breadth first, each once.
    function lineage(uint256 expertId) external view returns (uint256[] memory) {
        _expert(expertId);
        uint256[] memory found = new uint256[](MAX_LINEAGE);
        uint256 n = 0;
        uint256 head = 0;
        uint256 current = expertId;
        while (true) {
            uint256[] storage deps = _experts[current - 1].dependsOn;
            for (uint256 d = 0; d < deps.length; ++d) {
                if (!_contains(found, n, deps[d])) {
                    if (n == MAX_LINEAGE) revert LineageTooLong();
                    found[n++] = deps[d];
                }
            }
            if (head == n) break;
            current = found[head++];
        }
        uint256[] memory out = new uint256[](n);
        for (uint256 k = 0; k < n; ++k) out[k] = found[k];
        return out;
    }

    // ---- internals -------------------------------------------------------------------------

    function _registerExpert(
        string memory name,
        uint16 layer,
        uint16 index,
        bytes32 payloadHash,
        uint64 size,
        uint256[] memory dependsOn,
        address contributor
    ) private returns (uint256) {
        // One memory struct keeps the stack shallow (no via-IR needed).
        return _addExpert(Expert(name, layer, index, payloadHash, size, contributor, dependsOn));
    }

    function _addExpert(Expert memory e) private returns (uint256 expertId) {
        uint256 nameLen = bytes(e.name).length;
        if (nameLen == 0 || nameLen > MAX_NAME_BYTES) revert InvalidName();
        if (e.layer >= layers) revert LayerOutOfRange(e.layer);
        if (e.index >= expertsPerLayer) revert IndexOutOfRange(e.index);
        if (e.payloadHash == bytes32(0)) revert ZeroPayloadHash();
        if (e.size == 0) revert ZeroSize();
        uint256 existing = expertByPayload[e.payloadHash];
        if (existing != 0 && !uploadExpired(existing)) revert DuplicatePayload(existing);
        if (e.dependsOn.length > MAX_DEPENDS) revert TooManyDependencies();
        for (uint256 d = 0; d < e.dependsOn.length; ++d) {
            if (e.dependsOn[d] == 0 || e.dependsOn[d] > _experts.length) revert UnknownExpert(e.dependsOn[d]);
        }
        _experts.push(e);
        expertId = _experts.length;
        expertByPayload[e.payloadHash] = expertId;
        emit ExpertRegistered(expertId, e.layer, e.index, e.payloadHash, e.size, e.contributor, e.dependsOn, e.name);
    }

    function _registerSnapshot(bytes32 trunkHash, uint256[] memory expertIds, address registrant)
        private
        returns (uint256 snapshotId)
    {
        if (trunkHash == bytes32(0)) revert ZeroTrunkHash();
        uint256 slots = uint256(layers) * expertsPerLayer;
        if (expertIds.length != slots) revert WrongExpertCount(slots, expertIds.length);
        snapshotId = _snapshots.length + 1;
        for (uint256 s = 0; s < slots; ++s) {
            uint256 id = expertIds[s];
            if (id == 0 || id > _experts.length) revert UnknownExpert(id);
            Expert storage e = _experts[id - 1];
            if (e.layer != s / expertsPerLayer || e.index != s % expertsPerLayer) revert SlotMismatch(s, id);
            if (id > _genesisExperts && chunksReceived[id] != _chunkHashes[id].length) {
                revert IncompletePayload(id, chunksReceived[id], _chunkHashes[id].length);
            }
            isExpertInSnapshot[snapshotId][id] = true;
        }
        _snapshots.push(Snapshot(trunkHash, registrant, expertIds));
        emit SnapshotRegistered(snapshotId, trunkHash, registrant);
    }

    function _expert(uint256 expertId) private view returns (Expert storage) {
        if (expertId == 0 || expertId > _experts.length) revert UnknownExpert(expertId);
        return _experts[expertId - 1];
    }

    function _snapshot(uint256 snapshotId) private view returns (Snapshot storage) {
        if (snapshotId == 0 || snapshotId > _snapshots.length) revert UnknownSnapshot(snapshotId);
        return _snapshots[snapshotId - 1];
    }

    function _contains(uint256[] memory arr, uint256 n, uint256 value) private pure returns (bool) {
        for (uint256 k = 0; k < n; ++k) {
            if (arr[k] == value) return true;
        }
        return false;
    }
}

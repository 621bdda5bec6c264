// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @notice The TEE attestation precompile at 0x…F5 (see docs/SPEC.md): it checks the
///         vendor's signature on an attestation document and returns what it binds.
interface AttestationVerifier {
    function verifyAttestation(bytes calldata document)
        external
        view
        returns (address vendor, address enclaveKey, bytes32 measurement, uint64 timestamp);
}

address constant ATTESTATION_VERIFIER_ADDRESS = 0x00000000000000000000000000000000000000F5;

/// @title InferenceNodeRegistry
/// @notice Which inference nodes' results a validator accepts, and for which modes.
/// @dev Deployed at genesis at a fixed address; storage slots 0-2 (owner, vendorRoot,
///      maxAttestationAge) are written by the genesis. Modes are a bit mask:
///      1 << 0 VANILLA, 1 << 1 ZKML, 1 << 2 TEE. Validators read the registry in the
///      state of the parent block, so a change made in block N applies from block N + 1.
contract InferenceNodeRegistry {
    struct Node {
        uint8 modes;
        bytes32 measurement;
        uint64 attestedAt;
    }

    address public owner;
    address public vendorRoot;
    uint256 public maxAttestationAge;
    mapping(bytes32 => bool) public allowedMeasurement;
    mapping(address => Node) private nodes;
    mapping(string => bytes32) public circuitVkHash;

    uint8 internal constant VANILLA = 1;
    uint8 internal constant ZKML = 2;
    uint8 internal constant TEE = 4;

    event NodeRegistered(address indexed node, uint8 modes);
    event NodeDeregistered(address indexed node);
    event MeasurementAllowed(bytes32 indexed measurement, bool allowed);
    event CircuitRegistered(string modelCID, bytes32 vkHash);

    modifier onlyOwner() {
        require(msg.sender == owner, "registry: only the owner");
        _;
    }

    /// @notice A node registers its own signing key for VANILLA and/or ZKML results.
    function register(uint8 modes) external {
        _register(msg.sender, modes);
    }

    /// @notice The owner registers a node key (governance; the dev chain uses it at start).
    function registerNode(address node, uint8 modes) external onlyOwner {
        _register(node, modes);
    }

    /// @notice Anyone may register an enclave with its attestation: the attestation is the proof.
    function registerTEE(bytes calldata attestation) external returns (address enclaveKey) {
        (address vendor, address key, bytes32 measurement, uint64 timestamp) =
            AttestationVerifier(ATTESTATION_VERIFIER_ADDRESS).verifyAttestation(attestation);
        require(vendor == vendorRoot, "registry: attestation not signed by the vendor root");
        require(allowedMeasurement[measurement], "registry: unknown enclave measurement");
        require(timestamp <= block.timestamp, "registry: attestation from the future");
        require(block.timestamp <= uint256(timestamp) + maxAttestationAge, "registry: attestation expired");
        Node storage node = nodes[key];
        node.modes |= TEE;
        node.measurement = measurement;
        node.attestedAt = timestamp;
        emit NodeRegistered(key, node.modes);
        return key;
    }

    /// @notice The sender stops serving every mode; results it signs are refused from the next block.
    function deregister() external {
        delete nodes[msg.sender];
        emit NodeDeregistered(msg.sender);
    }

    function allowMeasurement(bytes32 measurement, bool allowed) external onlyOwner {
        allowedMeasurement[measurement] = allowed;
        emit MeasurementAllowed(measurement, allowed);
    }

    function registerCircuit(string calldata modelCID, bytes32 vkHash) external onlyOwner {
        circuitVkHash[modelCID] = vkHash;
        emit CircuitRegistered(modelCID, vkHash);
    }

    function setVendorRoot(address root) external onlyOwner {
        vendorRoot = root;
    }

    /// @notice Whether `node` may sign results of `mode` (0 VANILLA, 1 ZKML, 2 TEE).
    function isAllowed(address node, uint8 mode) external view returns (bool) {
        return mode < 3 && nodes[node].modes & uint8(1 << mode) != 0;
    }

    function nodeInfo(address node) external view returns (uint8 modes, bytes32 measurement, uint64 attestedAt) {
        Node storage n = nodes[node];
        return (n.modes, n.measurement, n.attestedAt);
    }

    function _register(address node, uint8 modes) private {
        require(modes != 0 && modes & ~(VANILLA | ZKML) == 0, "registry: only VANILLA and ZKML register without an attestation");
        nodes[node].modes |= modes;
        emit NodeRegistered(node, nodes[node].modes);
    }
}

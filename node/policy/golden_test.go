package policy

// goldenBuckets pins RolloutBucket for TestRolloutBucketVectors.
const goldenBuckets = "[405 6035 6607]" // computed independently (Python hashlib) from the PROTOCOL.md rule

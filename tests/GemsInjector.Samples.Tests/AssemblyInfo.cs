using Xunit;

// The process tests start several worker processes each, and the in-process tests switch this process's kernels:
// on a 2-core machine both run best one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

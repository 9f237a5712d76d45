using TorchSharp;
using Xunit;
namespace GemsInjector.Kernels.Tests;
public class Smoke { [Fact] public void Loads() { Assert.Equal(2.0f, torch.ones(2).sum().item<float>()); } }

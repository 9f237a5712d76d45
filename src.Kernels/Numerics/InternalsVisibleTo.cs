using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("GemsInjector.Kernels.Tests")]

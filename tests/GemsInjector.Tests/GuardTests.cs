using System;
using Xunit;

namespace GemsInjector.Tests;

public sealed class GuardTests
{
    [Theory]
    [InlineData(null, GuardDecision.Skip)]
    [InlineData("", GuardDecision.Skip)]
    [InlineData("   ", GuardDecision.Skip)]
    [InlineData("0", GuardDecision.Skip)]
    [InlineData("false", GuardDecision.Skip)]
    [InlineData("FALSE", GuardDecision.Skip)]
    [InlineData("no", GuardDecision.Skip)]
    [InlineData(" No ", GuardDecision.Skip)]
    [InlineData("1", GuardDecision.Enable)]
    [InlineData(" 1\n", GuardDecision.Enable)]
    [InlineData("true", GuardDecision.Enable)]
    [InlineData("True", GuardDecision.Enable)]
    [InlineData("TRUE", GuardDecision.Enable)]
    [InlineData("yes", GuardDecision.Enable)]
    [InlineData("YeS", GuardDecision.Enable)]
    [InlineData("\tyes\t", GuardDecision.Enable)]
    [InlineData("ture", GuardDecision.Invalid)]
    [InlineData("2", GuardDecision.Invalid)]
    [InlineData("-1", GuardDecision.Invalid)]
    [InlineData("on", GuardDecision.Invalid)]
    [InlineData("off", GuardDecision.Invalid)]
    [InlineData("y", GuardDecision.Invalid)]
    [InlineData("01", GuardDecision.Invalid)]
    [InlineData("1.0", GuardDecision.Invalid)]
    [InlineData("yes please", GuardDecision.Invalid)]
    [InlineData("\"1\"", GuardDecision.Invalid)]
    [InlineData("enable", GuardDecision.Invalid)]
    public void Parse_classifies_each_value(string? value, GuardDecision expected)
    {
        Assert.Equal(expected, GemsGuard.Parse(value));
    }

    [Theory]
    [InlineData("USE_FLAGGEMS", true)]
    [InlineData("MY_SWITCH_2", true)]
    [InlineData("", false)]
    [InlineData(" ", false)]
    [InlineData("USE FLAGGEMS", false)]
    [InlineData("A=B", false)]
    [InlineData("A\0B", false)]
    [InlineData(null, false)]
    public void Variable_names_are_checked(string? name, bool valid)
    {
        Assert.Equal(valid, GemsGuard.IsValidVariableName(name));
    }

    [Fact]
    public void Read_rejects_an_unusable_name_and_names_it()
    {
        var error = Assert.Throws<ArgumentException>(() => GemsGuard.Read("A=B"));
        Assert.Contains("'A=B'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_reports_the_raw_value()
    {
        var variable = $"GEMS_TEST_GUARD_{Guid.NewGuid():N}";
        Environment.SetEnvironmentVariable(variable, " Yes ");
        try
        {
            Assert.Equal(new GuardReading(variable, " Yes ", GuardDecision.Enable), GemsGuard.Read(variable));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }
}

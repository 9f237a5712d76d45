using System;
using System.Threading;

namespace GemsInjector.GpuHarness;

/// <summary>Result of comparing one case's outputs with the float64 reference.</summary>
internal sealed record CheckResult(bool Pass, double MaxAbs, double MaxRel, double TolRatio, long Failures, string Detail)
{
    public static CheckResult Merge(CheckResult? a, CheckResult b) => a is null ? b : new CheckResult(
        a.Pass && b.Pass, Math.Max(a.MaxAbs, b.MaxAbs), Math.Max(a.MaxRel, b.MaxRel), Math.Max(a.TolRatio, b.TolRatio), a.Failures + b.Failures,
        string.IsNullOrEmpty(a.Detail) ? b.Detail : string.IsNullOrEmpty(b.Detail) ? a.Detail : a.Detail + "; " + b.Detail);
}

/// <summary>
/// FlagGems-style closeness: |actual − ref| ≤ atol + rtol·|ref| for every element, with the reference rounded to the
/// output's storage type first (FlagGems compares against ref.to(dtype)); NaN must match NaN and ±∞ must match exactly.
/// Reports max abs error, max rel error (over |ref| > atol) and the tolerance ratio max |err| / (atol + rtol·|ref|) (≤ 1 passes).
/// </summary>
internal static class Checker
{
    public static CheckResult Values(string name, float[] actual, double[] expected, DType outType, double rtol, double atol)
    {
        if (actual.LongLength != expected.LongLength)
        {
            return new CheckResult(false, double.NaN, double.NaN, double.PositiveInfinity, 1, $"{name}: {actual.LongLength} elements, expected {expected.LongLength}");
        }

        object gate = new();
        double maxAbs = 0, maxRel = 0, ratio = 0;
        long failures = 0, firstFail = long.MaxValue;
        Par.Range(actual.LongLength, (lo, hi) =>
        {
            double lAbs = 0, lRel = 0, lRatio = 0;
            long lFail = 0, lFirst = long.MaxValue;
            for (long i = lo; i < hi; i++)
            {
                double e = outType.Round((float)expected[i]);
                double a = actual[i];
                bool ok;
                if (double.IsNaN(e))
                {
                    ok = double.IsNaN(a);
                }
                else if (double.IsInfinity(e))
                {
                    ok = a == e;
                }
                else if (double.IsNaN(a) || double.IsInfinity(a))
                {
                    ok = false;
                }
                else
                {
                    double err = Math.Abs(a - e), tol = atol + rtol * Math.Abs(e);
                    ok = err <= tol;
                    lAbs = Math.Max(lAbs, err);
                    if (Math.Abs(e) > atol)
                    {
                        lRel = Math.Max(lRel, err / Math.Abs(e));
                    }

                    lRatio = Math.Max(lRatio, tol > 0 ? err / tol : (err > 0 ? double.PositiveInfinity : 0));
                }

                if (!ok)
                {
                    if (double.IsNaN(a) || double.IsInfinity(a) || double.IsNaN(e) || double.IsInfinity(e))
                    {
                        lAbs = double.PositiveInfinity; // a NaN / ∞ where the reference has none (or the reverse)
                    }

                    lFail++;
                    lFirst = Math.Min(lFirst, i);
                }
            }

            lock (gate)
            {
                maxAbs = Math.Max(maxAbs, lAbs);
                maxRel = Math.Max(maxRel, lRel);
                ratio = Math.Max(ratio, lRatio);
                failures += lFail;
                firstFail = Math.Min(firstFail, lFirst);
            }
        });

        string detail = failures == 0 ? string.Empty
            : $"{name}: {failures} of {actual.LongLength} off, first [{firstFail}] = {actual[firstFail]:R}, expected {expected[firstFail]:R}";
        if (failures > 0)
        {
            ratio = Math.Max(ratio, 1.0000001);
        }

        return new CheckResult(failures == 0, maxAbs, maxRel, ratio, failures, detail);
    }

    public static CheckResult Indices(string name, long[] actual, long[] expected)
    {
        if (actual.LongLength != expected.LongLength)
        {
            return new CheckResult(false, double.NaN, double.NaN, double.PositiveInfinity, 1, $"{name}: {actual.LongLength} indices, expected {expected.LongLength}");
        }

        long failures = 0, first = -1;
        for (long i = 0; i < actual.LongLength; i++)
        {
            if (actual[i] != expected[i])
            {
                if (failures++ == 0)
                {
                    first = i;
                }
            }
        }

        string detail = failures == 0 ? string.Empty : $"{name}: {failures} of {actual.LongLength} indices differ, first [{first}] = {actual[first]}, expected {expected[first]}";
        return new CheckResult(failures == 0, 0, 0, failures == 0 ? 0 : double.PositiveInfinity, failures, detail);
    }
}

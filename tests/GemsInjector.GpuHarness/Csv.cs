using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace GemsInjector.GpuHarness;

/// <summary>One CSV row per case (the first nine columns are the contract; the rest are detail).</summary>
internal sealed record Row(
    string Suite, string Op, string DType, string Shape, double Ms, double GBps, double TFlops, double MaxErr, string Status,
    double P10 = double.NaN, double P90 = double.NaN, double MaxRel = double.NaN, double TolRatio = double.NaN,
    long Bytes = 0, double Flops = 0, int Runs = 0, int Sets = 0, string Timer = "", string Category = "", string BytesFormula = "",
    double SecondMs = double.NaN, double CompileMs = double.NaN, double SinceStartMs = double.NaN, int Seed = 0, string Note = "");

internal sealed class CsvSink
{
    private const string Header = "suite,op,dtype,shape,ms,GB/s,TFLOP/s,max_err,status,p10_ms,p90_ms,max_rel_err,tol_ratio,bytes,flops,runs,sets,timer,category,bytes_formula,second_ms,compile_ms,since_start_ms,seed,note";
    private readonly List<Row> rows = new();
    private readonly StreamWriter? writer;

    /// <summary>Rows go to <paramref name="path"/> as they come (flushed each), so a run cut short keeps what it did.</summary>
    public CsvSink(string? path)
    {
        if (path is null)
        {
            return;
        }

        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        writer = new StreamWriter(path) { AutoFlush = true };
        writer.WriteLine(Header);
    }

    public IReadOnlyList<Row> Rows => rows;

    public void Add(Row r)
    {
        rows.Add(r);
        writer?.WriteLine(Format(r));
    }

    public void Close() => writer?.Dispose();

    private static string Format(Row r) => string.Join(",", new[]
            {
                r.Suite, r.Op, r.DType, r.Shape, F(r.Ms), F(r.GBps), F(r.TFlops), F(r.MaxErr), r.Status,
                F(r.P10), F(r.P90), F(r.MaxRel), F(r.TolRatio), r.Bytes.ToString(CultureInfo.InvariantCulture), F(r.Flops),
                r.Runs.ToString(CultureInfo.InvariantCulture), r.Sets.ToString(CultureInfo.InvariantCulture), r.Timer, r.Category, r.BytesFormula,
                F(r.SecondMs), F(r.CompileMs), F(r.SinceStartMs), r.Seed.ToString(CultureInfo.InvariantCulture), r.Note,
            }.Select(Quote));

    private static string F(double v) => double.IsNaN(v) ? string.Empty : v.ToString("G6", CultureInfo.InvariantCulture);

    private static string Quote(string s) => s.IndexOfAny(new[] { ',', '"', '\n' }) >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
}

using System;
using System.Collections.Generic;
using System.Linq;
using System.Linq.Expressions;
using System.Reflection;
using GemsInjector.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Runtime;

namespace GemsInjector.GpuHarness;

/// <summary>
/// Binds a case to an <see cref="IlgpuKernels"/> method by reflection, matching parameters by name (case-insensitive,
/// with aliases). The kernels' API is still growing (16-bit overloads, GEMM, rotary, attention): a case whose method or
/// dtype overload does not exist yet is reported as SKIP with the reason, and the harness compiles whatever the API is.
/// 16-bit overloads are recognized as methods of the same name (or name + F16/BF16/Half/BFloat16/16) whose data
/// parameters are <c>ArrayView&lt;ushort&gt;</c>; an extra bool/int parameter whose name mentions bf16/bfloat, or an
/// enum parameter with a member named after the dtype, selects the format.
/// </summary>
internal sealed class Binder
{
    private readonly IlgpuKernels kernels;

    public Binder(IlgpuKernels kernels) => this.kernels = kernels;

    /// <summary>A resolved binding: the method and, per parameter, where its value comes from.</summary>
    public sealed class Binding
    {
        public Binding(MethodInfo method, ArgSource[] args)
        {
            Method = method;
            Args = args;
        }

        public MethodInfo Method { get; }

        public ArgSource[] Args { get; }

        /// <summary>The compiled call (views as an array), made on first use.</summary>
        public Action<object?[]>? Open { get; set; }

        /// <summary>Tensor name → the device element type the method wants.</summary>
        public Dictionary<string, Type> TensorTypes => Args.OfType<TensorArg>().GroupBy(a => a.Tensor).ToDictionary(g => g.Key, g => g.First().ElementType);

        public string Signature => $"{Method.Name}({string.Join(", ", Method.GetParameters().Select(p => $"{TypeName(p.ParameterType)} {p.Name}"))})";
    }

    internal abstract record ArgSource;

    internal sealed record TensorArg(string Tensor, Type ElementType) : ArgSource;

    internal sealed record ConstArg(object? Value, Type Type) : ArgSource;

    /// <summary>Finds the method for the case and dtype; null with a reason when there is none.</summary>
    public Binding? Bind(OpCase c, out string reason)
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var m in c.Methods)
        {
            names.Add(m);
            if (c.DType != DType.F32)
            {
                foreach (var suffix in c.DType == DType.F16 ? new[] { "F16", "Half", "Float16", "16", "Fp16" } : new[] { "BF16", "Bf16", "BFloat16", "16" })
                {
                    names.Add(m + suffix);
                }
            }
        }

        var candidates = typeof(IlgpuKernels).GetMethods(BindingFlags.Public | BindingFlags.Instance)
            .Where(m => names.Contains(m.Name) && !m.IsGenericMethodDefinition && m.ReturnType == typeof(void))
            .OrderBy(m => Array.FindIndex(c.Methods, n => string.Equals(n, m.Name, StringComparison.OrdinalIgnoreCase)) is int ix and >= 0 ? ix : c.Methods.Length)
            .ThenBy(m => m.GetParameters().Length)
            .ToList();
        if (candidates.Count == 0)
        {
            reason = $"no IlgpuKernels.{string.Join("/", c.Methods)} yet";
            return null;
        }

        var reasons = new List<string>();
        foreach (var m in candidates)
        {
            var b = TryBind(m, c, out string why);
            if (b is not null)
            {
                reason = string.Empty;
                return b;
            }

            reasons.Add($"{m.Name}: {why}");
        }

        reason = c.DType == DType.F32 || reasons.All(r => r.Contains("no data tensor", StringComparison.Ordinal))
            ? $"no {c.DType.Name()} overload of {c.Methods[0]} ({string.Join("; ", reasons.Distinct().Take(3))})"
            : string.Join("; ", reasons.Distinct().Take(3));
        return null;
    }

    private static Binding? TryBind(MethodInfo m, OpCase c, out string why)
    {
        var tensors = c.Inputs.Concat(c.Outputs).ToList();
        var args = new ArgSource[m.GetParameters().Length];
        bool nativeData = false;
        int i = 0;
        foreach (var p in m.GetParameters())
        {
            string pn = p.Name ?? string.Empty;
            var t = tensors.FirstOrDefault(s => s.Names.Any(n => string.Equals(n, pn, StringComparison.OrdinalIgnoreCase)));
            var pt = p.ParameterType;
            if (t is not null)
            {
                if (!pt.IsGenericType || pt.GetGenericTypeDefinition() != typeof(ArrayView<>))
                {
                    why = $"parameter {pn} is {TypeName(pt)}, not an ArrayView";
                    return null;
                }

                var et = pt.GetGenericArguments()[0];
                if (t.Kind == TensorKind.Index)
                {
                    if (et != typeof(long) && et != typeof(int))
                    {
                        why = $"index parameter {pn} is ArrayView<{TypeName(et)}>";
                        return null;
                    }
                }
                else if (c.DType == DType.F32)
                {
                    if (et != typeof(float))
                    {
                        why = $"parameter {pn} is ArrayView<{TypeName(et)}>, case is float32";
                        return null;
                    }

                    nativeData = true;
                }
                else if (et == typeof(ushort))
                {
                    nativeData = true;
                }
                else if (et != typeof(float) || !t.AllowF32)
                {
                    why = $"parameter {pn} is ArrayView<{TypeName(et)}>";
                    return null;
                }

                args[i++] = new TensorArg(t.Name, et);
                continue;
            }

            if (c.Scalars.TryGetValue(pn, out var value) && TryConvert(value, pt, out var converted))
            {
                args[i++] = new ConstArg(converted, pt);
                continue;
            }

            if (TryFormatSelector(pn, pt, c.DType, out var selector))
            {
                args[i++] = new ConstArg(selector, pt);
                continue;
            }

            if (p.HasDefaultValue)
            {
                object? dv = p.DefaultValue is DBNull ? null : p.DefaultValue;
                if (dv is null && pt.IsValueType && Nullable.GetUnderlyingType(pt) is null)
                {
                    dv = Activator.CreateInstance(pt); // `ArrayView<float> mask = default`
                }

                args[i++] = new ConstArg(dv, pt);
                continue;
            }

            why = $"nothing for parameter {TypeName(pt)} {pn}";
            return null;
        }

        if (c.RequiredScalars.TryGetValue(m.Name, out var required))
        {
            var names = m.GetParameters().Select(p => p.Name ?? string.Empty).ToHashSet(StringComparer.OrdinalIgnoreCase);
            var missing = required.Where(r => !names.Contains(r)).ToList();
            if (missing.Count > 0)
            {
                why = $"takes no {string.Join(",", missing)} parameter";
                return null;
            }
        }

        if (!nativeData)
        {
            why = "no data tensor of the case's dtype";
            return null;
        }

        why = string.Empty;
        return new Binding(m, args);
    }

    private static bool TryConvert(object value, Type type, out object? converted)
    {
        converted = null;
        try
        {
            if (type.IsEnum)
            {
                if (value is string s && Enum.TryParse(type, s, true, out var e))
                {
                    converted = e;
                    return true;
                }

                return false;
            }

            if (value is string)
            {
                return false;
            }

            converted = Convert.ChangeType(value, type, System.Globalization.CultureInfo.InvariantCulture);
            return true;
        }
        catch (Exception ex) when (ex is InvalidCastException or FormatException or OverflowException)
        {
            return false;
        }
    }

    private static bool TryFormatSelector(string name, Type type, DType dtype, out object? value)
    {
        value = null;
        string n = name.ToLowerInvariant();
        bool mentionsBf = n.Contains("bf16", StringComparison.Ordinal) || n.Contains("bfloat", StringComparison.Ordinal);
        bool mentionsHalf = n.Contains("half", StringComparison.Ordinal) || n.Contains("f16", StringComparison.Ordinal) || n.Contains("fp16", StringComparison.Ordinal);
        if (type == typeof(bool) && (mentionsBf || mentionsHalf) && dtype != DType.F32)
        {
            value = mentionsBf ? dtype == DType.BF16 : dtype == DType.F16;
            return true;
        }

        if (type == typeof(int) && (mentionsBf || mentionsHalf) && dtype != DType.F32)
        {
            value = (mentionsBf ? dtype == DType.BF16 : dtype == DType.F16) ? 1 : 0;
            return true;
        }

        if (type.IsEnum)
        {
            string[] want = dtype switch
            {
                DType.F32 => new[] { "float32", "f32", "single", "float", "fp32" },
                DType.F16 => new[] { "float16", "f16", "half", "fp16" },
                _ => new[] { "bfloat16", "bf16", "bfloat" },
            };
            foreach (var member in Enum.GetNames(type))
            {
                if (want.Contains(member.ToLowerInvariant()))
                {
                    value = Enum.Parse(type, member);
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>
    /// A call over one set of device buffers. The call itself is compiled once per binding (views passed in an array,
    /// unboxed per call: no allocation), so thousands of rotation sets cost no compile each.
    /// </summary>
    public Action Compile(Binding b, DeviceSet set)
    {
        var open = b.Open ??= CompileOpen(b);
        var views = b.Args.Select(a => a is TensorArg t ? set.View(t.Tensor, t.ElementType) : null).ToArray();
        return () => open(views);
    }

    private Action<object?[]> CompileOpen(Binding b)
    {
        var ps = b.Method.GetParameters();
        var arr = Expression.Parameter(typeof(object[]), "views");
        var exprs = new Expression[ps.Length];
        for (int i = 0; i < ps.Length; i++)
        {
            exprs[i] = b.Args[i] switch
            {
                TensorArg => Expression.Unbox(Expression.ArrayIndex(arr, Expression.Constant(i)), ps[i].ParameterType),
                ConstArg k => Expression.Constant(k.Value, ps[i].ParameterType),
                _ => throw new InvalidOperationException(),
            };
        }

        return Expression.Lambda<Action<object?[]>>(Expression.Call(Expression.Constant(kernels), b.Method, exprs), arr).Compile();
    }

    internal static string TypeName(Type t) => t.IsGenericType
        ? $"{t.Name[..t.Name.IndexOf('`', StringComparison.Ordinal)]}<{string.Join(",", t.GetGenericArguments().Select(TypeName))}>"
        : t == typeof(float) ? "float" : t == typeof(int) ? "int" : t == typeof(long) ? "long" : t == typeof(ushort) ? "ushort" : t == typeof(bool) ? "bool" : t.Name;
}

/// <summary>One set of device buffers for a case (inputs uploaded, outputs poisoned), in the element types the binding wants.</summary>
internal sealed class DeviceSet : IDisposable
{
    private readonly Accelerator acc;
    private readonly Dictionary<string, (MemoryBuffer? Buffer, object View)> buffers = new();

    public DeviceSet(Accelerator acc) => this.acc = acc;

    /// <summary>The accelerator the set's buffers live on (for kernels the harness launches itself).</summary>
    public Accelerator Accelerator => acc;

    public long Bytes { get; private set; }

    /// <summary>Uses another set's buffer for a tensor (not owned, not counted): a big table shared by all sets.</summary>
    public void Share(DeviceSet other, string name)
    {
        if (other.buffers.TryGetValue(name, out var b))
        {
            buffers[name] = (null, b.View);
        }
    }

    public void Upload(HostTensor t, Type elementType)
    {
        if (t.Spec.Length == 0)
        {
            return;
        }

        if (elementType == typeof(float))
        {
            Put(t.Spec.Name, t.F);
        }
        else if (elementType == typeof(ushort))
        {
            var bits = new ushort[t.F.Length];
            var dt = t.DType;
            var src = t.F;
            Par.Range(bits.Length, (lo, hi) =>
            {
                for (long i = lo; i < hi; i++)
                {
                    bits[i] = dt.ToBits(src[i]);
                }
            });
            Put(t.Spec.Name, bits);
        }
        else if (elementType == typeof(long))
        {
            Put(t.Spec.Name, t.L);
        }
        else if (elementType == typeof(int))
        {
            Put(t.Spec.Name, t.L.Select(v => checked((int)v)).ToArray());
        }
        else
        {
            throw new NotSupportedException(elementType.Name);
        }
    }

    /// <summary>Allocates an output filled with NaN (float, 16-bit NaN bits) or long.MinValue (indices).</summary>
    public void Poisoned(TensorSpec spec, Type elementType, DType dtype)
    {
        if (spec.Length == 0)
        {
            return;
        }

        if (elementType == typeof(float))
        {
            Put(spec.Name, Filled(spec.Length, float.NaN));
        }
        else if (elementType == typeof(ushort))
        {
            Put(spec.Name, Filled(spec.Length, dtype.NaNBits()));
        }
        else if (elementType == typeof(long))
        {
            Put(spec.Name, Filled(spec.Length, long.MinValue));
        }
        else if (elementType == typeof(int))
        {
            Put(spec.Name, Filled(spec.Length, int.MinValue));
        }
        else
        {
            throw new NotSupportedException(elementType.Name);
        }
    }

    public object View(string name, Type elementType)
    {
        if (!buffers.TryGetValue(name, out var b))
        {
            // Empty tensors (an absent optional operand) bind to an empty view.
            return typeof(ArrayView<>).MakeGenericType(elementType).GetProperty("Empty", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
        }

        return b.View;
    }

    public T[] Download<T>(string name)
        where T : unmanaged
    {
        if (!buffers.TryGetValue(name, out var b))
        {
            return Array.Empty<T>();
        }

        var view = (ArrayView<T>)b.View;
        var host = new T[view.Length];
        view.CopyToCPU(host);
        return host;
    }

    public Type ElementType(string name) => buffers[name].View.GetType().GetGenericArguments()[0];

    private static T[] Filled<T>(long n, T value)
    {
        var a = new T[n];
        Array.Fill(a, value);
        return a;
    }

    private void Put<T>(string name, T[] data)
        where T : unmanaged
    {
        var buf = acc.Allocate1D(data);
        buffers[name] = (buf, (ArrayView<T>)buf.View);
        Bytes += buf.LengthInBytes;
    }

    public void Dispose()
    {
        foreach (var b in buffers.Values)
        {
            b.Buffer?.Dispose();
        }

        buffers.Clear();
    }
}

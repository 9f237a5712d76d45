using System;
using System.Collections.Generic;
using System.Linq;
using GemsInjector;
using TorchSharp;

namespace GemsLlm;

/// <summary>
/// A small Llama-style decoder: token embedding, pre-norm decoder layers (RMSNorm, grouped-query attention with rotary
/// embedding and a KV cache, RMSNorm, SwiGLU MLP), final RMSNorm and LM head. Every computation goes through
/// <see cref="Ops"/>, so the model runs on whatever kernels GemsInjector's operator table holds. float32, CPU.
/// </summary>
public sealed class LlamaModel : IDisposable
{
    private readonly torch.Tensor _embedding;
    private readonly DecoderLayer[] _layers;
    private readonly RmsNorm _finalNorm;
    private readonly torch.Tensor _lmHeadT;
    private readonly RotaryEmbedding _rotary;
    private readonly List<torch.Tensor> _owned = [];

    /// <summary>Builds the model from validated weights.</summary>
    public LlamaModel(LlamaWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        LlmPatches.EnsureRegistered();
        Config = weights.Config;
        _embedding = Own(weights, "model.embed_tokens.weight");
        _rotary = new RotaryEmbedding(Config.HeadDim, Config.MaxPositions, Config.RopeTheta);
        _owned.Add(_rotary.CosSinCache);
        _layers = new DecoderLayer[Config.Layers];
        for (var i = 0; i < Config.Layers; i++)
        {
            var prefix = $"model.layers.{i}.";
            _layers[i] = new DecoderLayer(
                Config,
                new RmsNorm(Own(weights, prefix + "input_layernorm.weight"), Config.RmsNormEpsilon),
                OwnTransposed(weights, prefix + "self_attn.q_proj.weight"),
                OwnTransposed(weights, prefix + "self_attn.k_proj.weight"),
                OwnTransposed(weights, prefix + "self_attn.v_proj.weight"),
                OwnTransposed(weights, prefix + "self_attn.o_proj.weight"),
                new RmsNorm(Own(weights, prefix + "post_attention_layernorm.weight"), Config.RmsNormEpsilon),
                OwnTransposed(weights, prefix + "mlp.gate_up_proj.weight"),
                OwnTransposed(weights, prefix + "mlp.down_proj.weight"),
                _rotary);
        }

        _finalNorm = new RmsNorm(Own(weights, "model.norm.weight"), Config.RmsNormEpsilon);
        _lmHeadT = OwnTransposed(weights, "lm_head.weight");
    }

    /// <summary>The model's shape.</summary>
    public LlamaConfig Config { get; }

    /// <summary>Loads the checkpoint at <paramref name="path"/> (see <see cref="LlamaCheckpoint.Load"/>).</summary>
    public static LlamaModel Load(string path) => new(LlamaCheckpoint.Load(path));

    /// <summary>
    /// Greedy decoding: runs the prompt through the model in one causal pass (prefill), then one token per step
    /// with the KV cache, taking the argmax of the logits each time. Stops after <paramref name="maxNewTokens"/>
    /// tokens or at <paramref name="stopToken"/>.
    /// </summary>
    /// <param name="keepLogits">Keep each step's logits in the result (for comparing kernels).</param>
    public GenerationResult Generate(IReadOnlyList<int> prompt, int maxNewTokens, bool keepLogits = false, int? stopToken = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Count == 0)
        {
            throw new ArgumentException("The prompt has no tokens.", nameof(prompt));
        }

        if (prompt.Any(id => (uint)id >= (uint)Config.VocabSize))
        {
            throw new ArgumentException($"The prompt holds a token id outside the vocabulary of {Config.VocabSize}.", nameof(prompt));
        }

        if (prompt.Count + maxNewTokens > Config.MaxPositions)
        {
            throw new ArgumentException($"The prompt ({prompt.Count} tokens) and {maxNewTokens} new tokens exceed the {Config.MaxPositions} positions of the model.", nameof(maxNewTokens));
        }

        using var noGrad = torch.no_grad();
        using var outer = torch.NewDisposeScope();
        var caches = _layers.Select(_ => new KvCache(Config)).ToArray();
        var tokens = new List<int>();
        var logits = new List<float[]>();
        var input = prompt.ToArray();
        var position = 0;
        for (var step = 0; step < maxNewTokens; step++)
        {
            using var inner = torch.NewDisposeScope();
            var stepLogits = Forward(input, position, caches);
            var next = (int)Ops.Argmax(stepLogits, -1).item<long>();
            if (keepLogits)
            {
                logits.Add(stepLogits.data<float>().ToArray());
            }

            position += input.Length;
            tokens.Add(next);
            if (next == stopToken)
            {
                break;
            }

            input = [next];
        }

        return new GenerationResult(tokens.ToArray(), logits.ToArray());
    }

    /// <summary>Runs <paramref name="tokens"/> at positions <paramref name="start"/>.. through the model; returns the last position's logits [vocab].</summary>
    private torch.Tensor Forward(int[] tokens, int start, KvCache[] caches)
    {
        var ids = torch.tensor(tokens.Select(t => (long)t).ToArray(), torch.int64);
        var positions = torch.arange(start, start + tokens.Length, dtype: torch.int64);
        var hidden = Ops.Embedding(_embedding, ids);
        for (var i = 0; i < _layers.Length; i++)
        {
            hidden = _layers[i].Forward(hidden, positions, start, caches[i]);
        }

        var last = hidden.narrow(0, tokens.Length - 1, 1);
        return Ops.Mm(_finalNorm.Forward(last), _lmHeadT).view(-1);
    }

    private torch.Tensor Own(LlamaWeights weights, string name)
    {
        var tensor = weights.Tensors[name];
        var result = torch.tensor(tensor.Data, tensor.Shape).DetachFromDisposeScope();
        _owned.Add(result);
        return result;
    }

    private torch.Tensor OwnTransposed(LlamaWeights weights, string name)
    {
        // Checkpoints store linear weights as [out, in]; the model multiplies x [tokens, in] by [in, out].
        using var stored = Own(weights, name);
        _owned.Remove(stored);
        var result = stored.t().contiguous().DetachFromDisposeScope();
        _owned.Add(result);
        return result;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var tensor in _owned)
        {
            tensor.Dispose();
        }

        _owned.Clear();
    }

    private sealed class KvCache(LlamaConfig config)
    {
        public torch.Tensor Keys { get; } = torch.zeros([1, config.KvHeads, config.MaxPositions, config.HeadDim]);

        public torch.Tensor Values { get; } = torch.zeros([1, config.KvHeads, config.MaxPositions, config.HeadDim]);
    }

    private sealed class DecoderLayer(
        LlamaConfig config,
        RmsNorm inputNorm,
        torch.Tensor qT,
        torch.Tensor kT,
        torch.Tensor vT,
        torch.Tensor oT,
        RmsNorm postAttentionNorm,
        torch.Tensor gateUpT,
        torch.Tensor downT,
        RotaryEmbedding rotary)
    {
        public torch.Tensor Forward(torch.Tensor hidden, torch.Tensor positions, int start, KvCache cache)
        {
            var attention = Attention(inputNorm.Forward(hidden), positions, start, cache);
            hidden = Ops.Add(hidden, attention);
            var gateUp = Ops.Mm(postAttentionNorm.Forward(hidden), gateUpT);
            var mlp = Ops.Mm(SiluAndMul.Forward(gateUp), downT);
            return Ops.Add(hidden, mlp);
        }

        private torch.Tensor Attention(torch.Tensor x, torch.Tensor positions, int start, KvCache cache)
        {
            var length = x.shape[0];
            var (query, key) = rotary.Forward(positions, Ops.Mm(x, qT), Ops.Mm(x, kT));
            var value = Ops.Mm(x, vT);

            // [tokens, heads * headDim] -> [1, heads, tokens, headDim]
            var q = query.view(1, length, config.Heads, config.HeadDim).transpose(1, 2).contiguous();
            cache.Keys.narrow(2, start, length).copy_(key.view(1, length, config.KvHeads, config.HeadDim).transpose(1, 2));
            cache.Values.narrow(2, start, length).copy_(value.view(1, length, config.KvHeads, config.HeadDim).transpose(1, 2));
            var keys = cache.Keys.narrow(2, 0, start + length).contiguous();
            var values = cache.Values.narrow(2, 0, start + length).contiguous();

            // Prefill starts at 0, so PyTorch's top-left causal mask is the right one; a decode step sees every cached key.
            if (length > 1 && start != 0)
            {
                throw new NotSupportedException("Chunked prefill (several tokens after position 0) is not supported by this sample.");
            }

            var attended = Ops.ScaledDotProductAttention(q, keys, values, null, isCausal: length > 1, scale: null);
            var merged = attended.transpose(1, 2).contiguous().view(length, config.Heads * config.HeadDim);
            return Ops.Mm(merged, oT);
        }
    }
}

/// <summary>The generated tokens and, when kept, each step's logits.</summary>
public sealed record GenerationResult(int[] Tokens, float[][] Logits);

using System;
using System.Collections.Generic;
using System.Linq;

namespace GemsLlm;

/// <summary>
/// A tiny deterministic word tokenizer: four special tokens, a fixed list of common English words, then made-up
/// syllable words up to the vocabulary size. Lower-cases, splits on white space and punctuation; unknown words map to
/// <c>&lt;unk&gt;</c>. Good enough to turn prompts into ids and ids back into readable text.
/// </summary>
public sealed class WordTokenizer
{
    /// <summary>Padding.</summary>
    public const int Pad = 0;

    /// <summary>Beginning of sequence: every encoded prompt starts with it.</summary>
    public const int Bos = 1;

    /// <summary>End of sequence.</summary>
    public const int Eos = 2;

    /// <summary>Unknown word.</summary>
    public const int Unknown = 3;

    private static readonly string[] CommonWords =
    [
        "the", "a", "an", "and", "or", "but", "if", "then", "of", "to", "in", "on", "at", "by", "for", "with", "from",
        "is", "are", "was", "were", "be", "been", "has", "have", "had", "do", "does", "did", "will", "would", "can",
        "could", "should", "may", "might", "must", "not", "no", "yes", "it", "this", "that", "these", "those", "i",
        "you", "he", "she", "we", "they", "what", "which", "who", "when", "where", "why", "how", "all", "each", "every",
        "some", "many", "more", "most", "other", "one", "two", "three", "four", "five", "first", "last", "new", "old",
        "good", "fast", "slow", "big", "small", "model", "worker", "workers", "node", "nodes", "kernel", "kernels",
        "gpu", "cpu", "cluster", "job", "token", "tokens", "layer", "layers", "attention", "cache", "tensor", "tensors",
        "vector", "matrix", "weight", "weights", "training", "inference", "language", "data", "time", "day", "night",
        "world", "people", "city", "river", "mountain", "sea", "sun", "moon", "star", "tree", "stone", "fire", "water",
        "wind", "light", "dark", "red", "green", "blue", "story", "once", "upon", "there", "lived", "king", "queen",
        "cat", "dog", "bird", "fish", "house", "road", "book", "song", "game", "run", "runs", "go", "goes", "make",
        "makes", "see", "know", "think", "say", "tell", "ask", "give", "take", "find", "use", "work", "works", "learn",
        "write", "read", "start", "stop", "open", "close", "fleet", "launcher", "silo", "grain", "process", "machine",
    ];

    private static readonly string[] Onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"];
    private static readonly string[] Vowels = ["a", "e", "i", "o", "u"];

    private readonly string[] _words;
    private readonly Dictionary<string, int> _ids;

    /// <summary>Builds the vocabulary of <paramref name="vocabSize"/> tokens.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="vocabSize"/> is smaller than the special tokens and common words, or larger than this tokenizer can make.</exception>
    public WordTokenizer(int vocabSize = 512)
    {
        var words = new List<string> { "<pad>", "<bos>", "<eos>", "<unk>" };
        words.AddRange(CommonWords.Distinct(StringComparer.Ordinal));
        if (vocabSize < words.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, $"The vocabulary needs at least {words.Count} tokens.");
        }

        // Made-up words: consonant-vowel syllable pairs in a fixed order (14*5 = 70 syllables, 4900 pairs).
        var syllables = Onsets.SelectMany(onset => Vowels.Select(vowel => onset + vowel)).ToArray();
        var known = new HashSet<string>(words, StringComparer.Ordinal);
        foreach (var first in syllables)
        {
            foreach (var second in syllables)
            {
                if (words.Count == vocabSize)
                {
                    break;
                }

                if (known.Add(first + second))
                {
                    words.Add(first + second);
                }
            }
        }

        if (words.Count != vocabSize)
        {
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, $"This tokenizer makes at most {words.Count} tokens.");
        }

        _words = [.. words];
        _ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < _words.Length; i++)
        {
            _ids[_words[i]] = i;
        }
    }

    /// <summary>The number of tokens.</summary>
    public int VocabSize => _words.Length;

    /// <summary>The ids of <paramref name="text"/>'s words, after <see cref="Bos"/>.</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int> { Bos };
        foreach (var word in text.ToLowerInvariant().Split(Separators, StringSplitOptions.RemoveEmptyEntries))
        {
            ids.Add(_ids.GetValueOrDefault(word, Unknown));
        }

        return [.. ids];
    }

    /// <summary>The words of <paramref name="ids"/>, space-separated; special tokens other than unknown are skipped.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var words = new List<string>();
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)_words.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is outside the vocabulary of {_words.Length}.");
            }

            if (id is Pad or Bos or Eos)
            {
                continue;
            }

            words.Add(_words[id]);
        }

        return string.Join(' ', words);
    }

    private static readonly char[] Separators = [' ', '\t', '\r', '\n', '.', ',', ';', ':', '!', '?', '"', '(', ')'];
}

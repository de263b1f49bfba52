"""Generate the embedded demo dataset for chatft (JointBERT / ATIS layout).

The output directory gets one folder per split, each with three line-aligned files::

    <out>/{train,dev,test}/seq.in   # lowercase, space-separated words, one utterance per line
    <out>/{train,dev,test}/seq.out  # one BIO tag per word (O, B-<slot>, I-<slot>)
    <out>/{train,dev,test}/label    # one intent per line
    <out>/README.md                 # description + counts (regenerated each run)

Utterances are built from hand-written templates filled with slot values, using
``random.Random(seed)`` only, so the output is byte-identical for a given seed.
About 20% of the values of some open-class slot types (cities, artists, songs,
reminder tasks, restaurant names, news topics) are held out of train and only
appear in dev/test, so slot tagging has to generalise beyond memorised values.
Utterances are unique within a split and never repeated across splits.

After writing, the script re-reads the files and validates them (equal word and
tag counts, well-formed BIO with every ``I-x`` following ``B-x``/``I-x``, plain
word tokens, no cross-split duplicates); it exits non-zero on any problem.

Usage (from the repository root)::

    python scripts/make_demo_data.py                      # seed 13 -> chatft/resources/demo
    python scripts/make_demo_data.py --seed 7 --out /tmp/demo
    python scripts/make_demo_data.py --check              # only validate an existing dataset
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from pathlib import Path

DEFAULT_SEED = 13
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "chatft" / "resources" / "demo"
SPLIT_SIZES = {"train": 1200, "dev": 200, "test": 300}
HOLDOUT_FRACTION = 0.2
SUFFIX_PROB = 0.08
SUFFIXES = ["please", "thanks", "thank you", "for me"]

# --------------------------------------------------------------------------- values

VOCAB: dict[str, list[str]] = {
    "city": [
        "new york", "san francisco", "los angeles", "chicago", "boston", "seattle", "denver",
        "atlanta", "miami", "dallas", "houston", "phoenix", "las vegas", "new orleans",
        "salt lake city", "portland", "san diego", "washington", "philadelphia", "detroit",
        "london", "paris", "tokyo", "berlin", "madrid", "rome", "toronto", "vancouver",
        "mexico city", "sao paulo", "buenos aires", "hong kong", "cape town", "sydney",
        "amsterdam", "dublin", "kansas city", "st louis", "minneapolis", "nashville",
    ],
    "date": [
        "today", "tomorrow", "tonight", "the day after tomorrow", "this weekend", "next week",
        "next friday", "next monday", "this saturday", "this sunday", "tuesday", "wednesday",
        "thursday morning", "friday night", "march 21st", "april 3rd", "june 15th",
        "december 24th", "the first of may", "next month", "this afternoon", "monday",
    ],
    "past_date": [
        "today", "yesterday", "this morning", "last night", "this week", "over the weekend",
        "in the last hour", "so far today",
    ],
    "time": [
        "7 am", "6 am", "10 am", "8 pm", "5 pm", "11 pm", "noon", "midnight", "half past six",
        "quarter to eight", "quarter past nine", "seven thirty", "eleven fifteen", "9 o'clock",
        "six in the evening", "3 in the afternoon", "8 in the morning", "ten thirty pm",
        "6 45", "5 30 am",
    ],
    "airline_name": [
        "delta", "united", "american airlines", "southwest", "jetblue", "alaska airlines",
        "british airways", "lufthansa", "air france", "air canada", "spirit",
    ],
    "artist": [
        "the rolling stones", "the beatles", "taylor swift", "adele", "queen", "michael jackson",
        "ed sheeran", "beyonce", "drake", "coldplay", "nirvana", "fleetwood mac", "daft punk",
        "the weeknd", "billie eilish", "bruno mars", "dua lipa", "harry styles", "pink floyd",
        "led zeppelin", "eminem", "kendrick lamar", "dolly parton", "aretha franklin", "prince",
        "abba", "oasis", "radiohead", "arctic monkeys", "lady gaga", "bob marley", "johnny cash",
        "elton john", "david bowie", "stevie wonder", "miles davis", "norah jones", "the killers",
        "imagine dragons", "frank sinatra",
    ],
    "song": [
        "bohemian rhapsody", "hotel california", "yesterday", "shape of you", "hey jude",
        "rolling in the deep", "billie jean", "wonderwall", "smells like teen spirit", "let it be",
        "purple rain", "dancing queen", "sweet child o' mine", "hallelujah", "imagine",
        "blinding lights", "bad guy", "thriller", "respect", "stairway to heaven", "take on me",
        "africa", "halo", "someone like you", "uptown funk", "happy", "clocks", "yellow",
        "fix you", "paint it black", "jolene", "crazy in love", "levitating", "as it was",
        "shake it off", "lose yourself", "dreams", "superstition", "fly me to the moon",
        "mr brightside",
    ],
    "playlist": [
        "workout", "chill vibes", "road trip", "morning coffee", "focus", "sleep", "party mix",
        "discover weekly", "throwback thursday", "dinner jazz", "rainy day", "summer hits",
        "study beats", "running", "feel good",
    ],
    "genre": [
        "jazz", "classical", "rock", "hip hop", "country", "lo fi", "blues", "reggae",
        "heavy metal", "electronic", "indie rock", "k pop", "pop", "soul", "folk",
        "r and b", "punk", "disco",
    ],
    "task": [
        "call my mom", "pick up the dry cleaning", "pay the electricity bill", "water the plants",
        "take out the trash", "buy milk", "feed the cat", "walk the dog",
        "book a dentist appointment", "renew my passport", "send the report to john",
        "email my boss", "pick up the kids from school", "take my medication", "call the plumber",
        "buy a birthday present for sarah", "return the library books", "submit my timesheet",
        "check the oven", "charge my phone", "cancel the gym membership", "order more coffee",
        "wish dad a happy birthday", "clean the fridge", "move the car", "text alex", "pay rent",
        "schedule a haircut", "back up my laptop", "stretch", "call grandma",
        "pick up groceries", "finish the presentation", "lock the back door", "buy flowers",
    ],
    "device": [
        "lights", "lamp", "fan", "ceiling fan", "tv", "heater", "air conditioner",
        "coffee maker", "dishwasher", "space heater", "floor lamp", "speaker", "humidifier",
        "porch light", "christmas lights", "sprinklers", "washing machine", "radio",
        "desk lamp", "television",
    ],
    "room": [
        "living room", "kitchen", "bedroom", "master bedroom", "guest room", "garage", "office",
        "basement", "dining room", "bathroom", "hallway", "kids room", "attic", "nursery",
        "upstairs bathroom", "study",
    ],
    "state": ["on", "off"],
    "restaurant_name": [
        "olive garden", "the cheesecake factory", "nobu", "chez panisse", "the french laundry",
        "shake shack", "le bernardin", "joe's pizza", "the ivy", "din tai fung", "momofuku",
        "el farolito", "the golden dragon", "blue ribbon sushi", "carmine's", "peter luger",
        "taco loco", "the olive tree", "pho saigon", "the curry house", "mama mia trattoria",
        "sakura garden", "the hungry bear", "bistro du coin", "the blue door", "lucky noodle",
        "casa bonita", "the smokehouse", "little india", "marea",
    ],
    "cuisine": [
        "italian", "chinese", "thai", "mexican", "japanese", "indian", "sushi", "french", "greek",
        "korean", "vietnamese", "vegan", "seafood", "steak", "middle eastern", "ethiopian",
        "spanish", "tapas", "pizza", "barbecue",
    ],
    "party_size": [
        "two", "three", "four", "five", "six", "seven", "eight", "ten", "twelve", "2", "3", "4",
        "5", "6", "8",
    ],
    # news topics as noun phrases ("catch me up on the stock market") ...
    "topic": [
        "sports", "politics", "technology", "the stock market", "business", "science",
        "climate change", "the election", "football", "basketball", "world affairs", "health care",
        "entertainment", "space exploration", "artificial intelligence", "the economy",
        "the olympics", "crypto", "baseball", "tennis", "real estate", "education",
        "the housing market", "electric cars", "local politics",
    ],
    # ... and as modifiers ("give me the latest stock market news")
    "topic_mod": [
        "sports", "politics", "tech", "stock market", "business", "science", "climate",
        "election", "football", "basketball", "world", "health", "entertainment", "space", "ai",
        "economy", "local", "celebrity", "olympics", "crypto", "baseball", "tennis",
        "real estate", "education", "weather", "traffic",
    ],
    "news_source": [
        "bbc", "cnn", "the new york times", "reuters", "npr", "the guardian", "fox news",
        "al jazeera", "the washington post", "associated press", "bloomberg",
        "the wall street journal",
    ],
}  # fmt: skip

# Vocabularies with ~20% of values held out of train (seen only in dev/test).
HOLDOUT_VOCABS = ["city", "artist", "song", "task", "restaurant_name", "topic", "topic_mod"]

# Slot name -> default vocabulary. A placeholder may override it: {slot|vocab} or fix it: {slot:value}.
SLOT_VOCAB = {
    "fromloc.city_name": "city",
    "toloc.city_name": "city",
    "depart_date": "date",
    "depart_time": "time",
    "airline_name": "airline_name",
    "city": "city",
    "date": "date",
    "time": "time",
    "artist": "artist",
    "song": "song",
    "playlist": "playlist",
    "genre": "genre",
    "task": "task",
    "device": "device",
    "room": "room",
    "state": "state",
    "restaurant_name": "restaurant_name",
    "cuisine": "cuisine",
    "party_size": "party_size",
    "topic": "topic",
    "news_source": "news_source",
}

# --------------------------------------------------------------------------- templates

_GREET_OPENERS = [
    "hi",
    "hello",
    "hey",
    "hey there",
    "hello there",
    "hi there",
    "good morning",
    "good afternoon",
    "good evening",
    "howdy",
    "yo",
    "greetings",
    "morning",
]
_GREET_ADDRESSEES = ["", "assistant", "buddy", "friend", "bot", "there"]
_GREET_FOLLOWUPS = [
    "", "how are you", "how are you doing", "how's it going", "what's up", "nice to meet you",
    "how is your day going", "are you there", "how have you been", "good to see you",
]  # fmt: skip

TEMPLATES: dict[str, list[str]] = {
    "book_flight": [
        "book a flight from {fromloc.city_name} to {toloc.city_name}",
        "book a flight from {fromloc.city_name} to {toloc.city_name} {depart_date}",
        "i need a flight to {toloc.city_name} {depart_date}",
        "find me a flight from {fromloc.city_name} to {toloc.city_name} {depart_date} at {depart_time}",
        "i want to fly from {fromloc.city_name} to {toloc.city_name} {depart_date}",
        "get me a plane ticket to {toloc.city_name}",
        "are there any {airline_name} flights from {fromloc.city_name} to {toloc.city_name} {depart_date}",
        "book me on a flight to {toloc.city_name} leaving at {depart_time}",
        "i'd like to book a {airline_name} flight to {toloc.city_name} leaving {depart_date} around {depart_time}",
        "fly me to {toloc.city_name}",
        "can you book a plane ticket from {fromloc.city_name} to {toloc.city_name}",
        "search for flights to {toloc.city_name} departing {fromloc.city_name} {depart_date}",
        "i need to get from {fromloc.city_name} to {toloc.city_name} by plane {depart_date}",
        "book a flight",
        "i want to book a flight",
        "show me {airline_name} flights from {fromloc.city_name} to {toloc.city_name}",
        "reserve a seat on a flight to {toloc.city_name} {depart_date}",
        "i'm flying out of {fromloc.city_name} {depart_date} can you book me a flight to {toloc.city_name}",
        "book a flight from {fromloc.city_name} to {toloc.city_name} {depart_date} leaving at {depart_time}",
        "get me on a flight to {toloc.city_name} {depart_date} departing around {depart_time}",
        "is there a flight out of {fromloc.city_name} after {depart_time} {depart_date}",
    ],
    "get_weather": [
        "what's the weather in {city}",
        "what's the weather like in {city} {date}",
        "what's the weather {date}",
        "will it rain in {city} {date}",
        "is it going to snow {date}",
        "how hot will it be in {city} {date}",
        "give me the forecast for {city}",
        "what's the forecast for {date}",
        "do i need an umbrella {date}",
        "how cold is it in {city}",
        "what's the temperature outside",
        "tell me the weather forecast for {city} {date}",
        "is it sunny in {city}",
        "weather in {city} {date}",
        "should i bring a jacket to {city} {date}",
        "what's the weather",
        "is it going to be windy in {city}",
    ],
    "play_music": [
        "play {song} by {artist}",
        "play some {artist}",
        "play {song}",
        "put on my {playlist} playlist",
        "i want to hear {song} by {artist}",
        "play some {genre} music",
        "play some {genre}",
        "shuffle my {playlist} playlist",
        "play the latest album by {artist}",
        "can you play something by {artist}",
        "start playing my {playlist} playlist",
        "play music",
        "i'm in the mood for some {genre}",
        "put on {song} by {artist}",
        "play a song by {artist}",
        "play some {genre} from {artist}",
        "listen to {song}",
        "play my {playlist} playlist",
        "play the {playlist} playlist on shuffle",
    ],
    "set_reminder": [
        "remind me to {task}",
        "remind me to {task} {date}",
        "remind me to {task} at {time}",
        "remind me {date} at {time} to {task}",
        "set a reminder to {task} {date} at {time}",
        "can you remind me to {task} at {time} {date}",
        "don't let me forget to {task}",
        "i need a reminder to {task} {date}",
        "create a reminder for {date} to {task}",
        "add a reminder to {task}",
        "set a reminder",
        "please remind me at {time} that i need to {task}",
        "make sure i remember to {task} {date}",
        "remind me to {task} when i get home",
    ],
    "set_alarm": [
        "set an alarm for {time}",
        "set an alarm for {time} {date}",
        "wake me up at {time}",
        "wake me up at {time} {date}",
        "i need to wake up at {time} {date}",
        "set an alarm",
        "alarm for {time}",
        "can you set my alarm for {time}",
        "set a wake up alarm for {date} at {time}",
        "make an alarm for {time}",
        "put an alarm on for {time} {date}",
        "get me up at {time} {date}",
        "new alarm at {time}",
        "i want an alarm at {time}",
    ],
    "smart_home": [
        "turn {state} the {device}",
        "turn {state} the {room} {device}",
        "turn the {device} in the {room} {state}",
        "switch {state} the {device} in the {room}",
        "can you turn {state} the {device}",
        "please switch the {room} {device} {state}",
        "turn {state} all the {device} in the {room}",
        "i want the {device} {state}",
        "power {state} the {device}",
        "could you switch {state} the {device} in the {room}",
        "turn everything {state} in the {room}",
        "is the {device} in the {room} {state}",
        "make sure the {device} is {state}",
        "shut {state:off} the {device} in the {room}",
        "shut {state:off} the {room} {device}",
        "the {room} {device} should be {state}",
    ],
    "book_restaurant": [
        "book a table at {restaurant_name}",
        "book a table for {party_size} at {restaurant_name} {date} at {time}",
        "reserve a table for {party_size} people {date}",
        "i'd like to make a reservation at {restaurant_name} for {party_size}",
        "find me a {cuisine} restaurant in {city}",
        "book a {cuisine} restaurant for {party_size} {date}",
        "make a dinner reservation for {party_size} at {time}",
        "can you get us a table at {restaurant_name} {date}",
        "i want to book a {cuisine} place for {date} at {time}",
        "reserve {restaurant_name} for {party_size} people at {time}",
        "book a table",
        "we need a table for {party_size} at a {cuisine} restaurant in {city} {date}",
        "get me a reservation at a good {cuisine} restaurant",
        "is there a table free at {restaurant_name} {date} for {party_size}",
        "i want to eat {cuisine} food {date} book something for {party_size}",
    ],
    "get_news": [
        "what's the latest news",
        "give me the latest {topic|topic_mod} news",
        "what's happening in {topic}",
        "any news about {topic} {date|past_date}",
        "read me the headlines from {news_source}",
        "what are the top stories on {news_source} {date|past_date}",
        "tell me the {topic|topic_mod} news from {news_source}",
        "catch me up on {topic}",
        "what's new in {topic} {date|past_date}",
        "show me {topic|topic_mod} headlines",
        "i want to hear the news",
        "any updates on {topic}",
        "play the latest news briefing from {news_source}",
        "what did {news_source} say about {topic} {date|past_date}",
        "what happened in {topic} {date|past_date}",
    ],
    "greet": [
        " ".join(p for p in (o, a, f) if p)
        for o in _GREET_OPENERS
        for a in _GREET_ADDRESSEES
        for f in _GREET_FOLLOWUPS
    ],
}

INTENT_WEIGHTS = {intent: 1.0 for intent in TEMPLATES}
INTENT_WEIGHTS["greet"] = 0.5

TOKEN_RE = re.compile(r"^[a-z0-9]+(?:'[a-z0-9]*)*$")
TAG_RE = re.compile(r"^(O|[BI]-[a-z_.]+)$")
PLACEHOLDER_RE = re.compile(r"^\{([a-z_.]+)(?:\|([a-z_]+)|:([a-z0-9' ]+))?\}$")

# --------------------------------------------------------------------------- generation


def split_vocab(rng: random.Random) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Return (train_vocab, eval_vocab); eval uses all values, train lacks the held-out ones."""
    train_vocab = {k: list(v) for k, v in VOCAB.items()}
    for key in HOLDOUT_VOCABS:
        values = sorted(VOCAB[key])
        rng.shuffle(values)
        n_hold = max(1, round(HOLDOUT_FRACTION * len(values)))
        held = set(values[:n_hold])
        train_vocab[key] = [v for v in VOCAB[key] if v not in held]
    eval_vocab = {k: list(v) for k, v in VOCAB.items()}
    return train_vocab, eval_vocab


def fill(template: str, vocab: dict[str, list[str]], rng: random.Random) -> tuple[list[str], list[str]]:
    """Fill a template; returns (words, BIO tags). Slots sharing a vocabulary get distinct values."""
    words: list[str] = []
    tags: list[str] = []
    used: set[str] = set()
    for tok in template.split():
        m = PLACEHOLDER_RE.match(tok)
        if not m:
            words.append(tok)
            tags.append("O")
            continue
        slot, vocab_key, fixed = m.groups()
        if fixed is not None:
            value = fixed
        else:
            value = rng.choice([v for v in vocab[vocab_key or SLOT_VOCAB[slot]] if v not in used])
            used.add(value)
        for i, w in enumerate(value.split()):
            words.append(w)
            tags.append(("B-" if i == 0 else "I-") + slot)
    # "a italian restaurant" -> "an italian restaurant"
    for i in range(len(words) - 1):
        if words[i] == "a" and words[i + 1][0] in "aeio":
            words[i] = "an"
    return words, tags


def allocate(total: int) -> dict[str, int]:
    """Split `total` across intents proportionally to INTENT_WEIGHTS (largest remainder)."""
    wsum = sum(INTENT_WEIGHTS.values())
    raw = {k: total * w / wsum for k, w in INTENT_WEIGHTS.items()}
    counts = {k: int(v) for k, v in raw.items()}
    rest = total - sum(counts.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - counts[k]), k))[:rest]:
        counts[k] += 1
    return counts


Example = tuple[str, str, str]  # (seq.in line, seq.out line, intent)


def generate_split(
    total: int, vocab: dict[str, list[str]], rng: random.Random, taken: set[str]
) -> list[Example]:
    examples: list[Example] = []
    for intent, n in allocate(total).items():
        templates = TEMPLATES[intent]
        made, attempts = 0, 0
        while made < n:
            attempts += 1
            if attempts > 200 * n + 1000:
                raise RuntimeError(f"could not generate {n} unique utterances for {intent!r}")
            words, tags = fill(rng.choice(templates), vocab, rng)
            if intent != "greet" and rng.random() < SUFFIX_PROB:
                suffix = rng.choice(SUFFIXES).split()
                words += suffix
                tags += ["O"] * len(suffix)
            text = " ".join(words)
            if text in taken:
                continue
            taken.add(text)
            examples.append((text, " ".join(tags), intent))
            made += 1
    rng.shuffle(examples)
    return examples


def generate(seed: int) -> dict[str, list[Example]]:
    rng = random.Random(seed)
    train_vocab, eval_vocab = split_vocab(rng)
    taken: set[str] = set()
    splits = {}
    for split, size in SPLIT_SIZES.items():
        vocab = train_vocab if split == "train" else eval_vocab
        splits[split] = generate_split(size, vocab, rng, taken)
    return splits


# --------------------------------------------------------------------------- validation


def validate_split(split_dir: Path) -> tuple[list[str], list[Example]]:
    """Check one split folder; return (errors, examples)."""
    errors: list[str] = []
    files = {}
    for name in ("seq.in", "seq.out", "label"):
        path = split_dir / name
        if not path.is_file():
            return [f"{path}: missing"], []
        raw = path.read_text(encoding="utf-8")
        if raw and not raw.endswith("\n"):
            errors.append(f"{path}: no trailing newline")
        files[name] = raw.splitlines()
    n_in, n_out, n_lab = (len(files[k]) for k in ("seq.in", "seq.out", "label"))
    if not n_in == n_out == n_lab:
        errors.append(f"{split_dir}: line counts differ (seq.in={n_in}, seq.out={n_out}, label={n_lab})")
    examples: list[Example] = []
    for i, (text, tagline, label) in enumerate(
        zip(files["seq.in"], files["seq.out"], files["label"], strict=False), 1
    ):
        where = f"{split_dir.name}:{i}"
        words, tags = text.split(" "), tagline.split(" ")
        if len(words) != len(tags):
            errors.append(f"{where}: {len(words)} words but {len(tags)} tags")
        for w in words:
            if not TOKEN_RE.match(w):
                errors.append(f"{where}: bad word token {w!r}")
        prev = "O"
        for t in tags:
            if not TAG_RE.match(t):
                errors.append(f"{where}: bad tag {t!r}")
            elif t.startswith("I-") and prev[2:] != t[2:]:
                errors.append(f"{where}: {t} follows {prev}")
            prev = t
        if not re.match(r"^[a-z_]+$", label):
            errors.append(f"{where}: bad intent label {label!r}")
        examples.append((text, tagline, label))
    return errors, examples


def validate(out: Path) -> list[str]:
    errors: list[str] = []
    seen: dict[str, str] = {}
    for split in SPLIT_SIZES:
        errs, examples = validate_split(out / split)
        errors += errs
        for text, _, _ in examples:
            if text in seen:
                errors.append(f"{split}: duplicate utterance (also in {seen[text]}): {text!r}")
            else:
                seen[text] = split
    return errors


# --------------------------------------------------------------------------- output


def slot_spans(tagline: str) -> list[str]:
    return [t[2:] for t in tagline.split() if t.startswith("B-")]


def span_values(text: str, tagline: str) -> list[tuple[str, str]]:
    spans: list[tuple[str, list[str]]] = []
    for w, t in zip(text.split(), tagline.split(), strict=True):
        if t.startswith("B-"):
            spans.append((t[2:], [w]))
        elif t.startswith("I-"):
            spans[-1][1].append(w)
    return [(slot, " ".join(ws)) for slot, ws in spans]


def summarize(splits: dict[str, list[Example]]) -> dict:
    intents = sorted(TEMPLATES)
    slots = sorted(SLOT_VOCAB)
    per_intent = {s: Counter(e[2] for e in ex) for s, ex in splits.items()}
    per_slot = {s: Counter(sl for e in ex for sl in slot_spans(e[1])) for s, ex in splits.items()}
    train_values = {sv for e in splits["train"] for sv in span_values(e[0], e[1])}
    test_spans = [sv for e in splits["test"] for sv in span_values(e[0], e[1])]
    unseen = sum(sv not in train_values for sv in test_spans)
    return {
        "intents": intents,
        "slots": slots,
        "sizes": {s: len(ex) for s, ex in splits.items()},
        "per_intent": per_intent,
        "per_slot": per_slot,
        "test_spans": len(test_spans),
        "test_unseen": unseen,
        "no_slot": {
            s: sum(e[1].split().count("O") == len(e[1].split()) for e in ex) for s, ex in splits.items()
        },
    }


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def count_rows(keys: list[str], per: dict[str, Counter]) -> list[list[str]]:
    rows = [[f"`{k}`"] + [str(per[s][k]) for s in SPLIT_SIZES] for k in keys]
    rows.append(["**total**"] + [str(sum(per[s].values())) for s in SPLIT_SIZES])
    return rows


def render_readme(summary: dict, seed: int) -> str:
    header = ["", *SPLIT_SIZES]
    n_templates = {k: len(v) for k, v in TEMPLATES.items()}
    template_list = ", ".join(f"`{k}` {n_templates[k]}" for k in summary["intents"] if k != "greet")
    held = ", ".join(f"`{k}`" for k in dict.fromkeys(k.removesuffix("_mod") for k in HOLDOUT_VOCABS))
    pct = 100.0 * summary["test_unseen"] / max(1, summary["test_spans"])
    sizes = summary["sizes"]
    return f"""# chatft embedded demo dataset

A small synthetic dataset of virtual-assistant requests for **joint intent detection and
BIO slot filling**, in the JointBERT / ATIS folder layout. It lets chatft run its
pipeline, tests and tutorials offline without downloading ATIS or SNIPS.

```
{{train,dev,test}}/seq.in   one utterance per line: lowercase, space-separated words
{{train,dev,test}}/seq.out  one BIO tag per word (O, B-<slot>, I-<slot>)
{{train,dev,test}}/label    one intent per line
```

Sizes: train {sizes["train"]}, dev {sizes["dev"]}, test {sizes["test"]} utterances;
{len(summary["intents"])} intents and {len(summary["slots"])} slot types.

## How it was generated

`scripts/make_demo_data.py` fills hand-written templates (per intent: {template_list};
`greet` has {n_templates["greet"]} slotless combinations of greeting phrases) with slot values drawn with
`random.Random(seed)` (seed {seed}). Slot values are often multi-word (`new york`,
`the rolling stones`, `pick up the dry cleaning`, `half past six`); some templates have no
slots and some have three or four. About 8% of utterances get a trailing `please` /
`thanks` / `thank you` / `for me`. Slot names follow ATIS conventions
(`fromloc.city_name`, `toloc.city_name`, `depart_date`, `depart_time`, `airline_name`).

- Utterances are unique within each split, and no utterance appears in more than one split.
- About {round(100 * HOLDOUT_FRACTION)}% of the values of {held} are held out of train and
  appear only in dev/test. {summary["test_unseen"]} of the {summary["test_spans"]} slot spans in
  test ({pct:.1f}%) have a (slot, value) pair never seen in train.
- The script validates what it wrote (equal word/tag counts, every `I-x` after `B-x`/`I-x`,
  plain word tokens, no cross-split duplicates) and exits non-zero on any problem.

The data is template-generated and therefore much more regular than real user traffic:
expect near-perfect scores. Use it as a smoke test, not as a benchmark.

## Regenerate

From the repository root (output is byte-identical for the same seed):

```
python scripts/make_demo_data.py --seed {seed} --out chatft/resources/demo
python scripts/make_demo_data.py --check   # validate only
```

## Intents

{table(header, count_rows(summary["intents"], summary["per_intent"]))}

Utterances with no slots at all: train {summary["no_slot"]["train"]}, dev {summary["no_slot"]["dev"]},
test {summary["no_slot"]["test"]}.

## Slot types (number of spans)

{table(header, count_rows(summary["slots"], summary["per_slot"]))}

## License

Written for the chatft project and released under the MIT License, like the rest of the
project. All utterances are synthetic; names of real cities, artists, songs, restaurants
and news outlets are used only as slot values.
"""


def print_summary(summary: dict) -> None:
    splits = list(SPLIT_SIZES)
    print("split sizes: " + ", ".join(f"{s}={summary['sizes'][s]}" for s in splits))
    width = max(len(k) for k in summary["intents"] + summary["slots"]) + 2
    for title, keys, per in (
        ("intent", summary["intents"], summary["per_intent"]),
        ("slot (spans)", summary["slots"], summary["per_slot"]),
    ):
        print(f"\n{title:<{width}}" + "".join(f"{s:>8}" for s in splits))
        for k in keys:
            print(f"{k:<{width}}" + "".join(f"{per[s][k]:>8}" for s in splits))
    print(
        f"\ntest slot spans with a (slot, value) unseen in train: "
        f"{summary['test_unseen']}/{summary['test_spans']}"
    )


def write(out: Path, splits: dict[str, list[Example]], seed: int) -> dict:
    for split, examples in splits.items():
        d = out / split
        d.mkdir(parents=True, exist_ok=True)
        for name, col in (("seq.in", 0), ("seq.out", 1), ("label", 2)):
            with open(d / name, "w", encoding="utf-8", newline="\n") as f:
                f.write("".join(e[col] + "\n" for e in examples))
    summary = summarize(splits)
    with open(out / "README.md", "w", encoding="utf-8", newline="\n") as f:
        f.write(render_readme(summary, seed))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default: %(default)s)"
    )
    parser.add_argument("--check", action="store_true", help="only validate an existing dataset at --out")
    args = parser.parse_args(argv)

    if not args.check:
        splits = generate(args.seed)
        summary = write(args.out, splits, args.seed)
        print(f"wrote {args.out} (seed {args.seed})")
        print_summary(summary)

    errors = validate(args.out)
    if errors:
        for e in errors[:50]:
            print(f"ERROR: {e}", file=sys.stderr)
        print(f"validation failed: {len(errors)} problem(s) in {args.out}", file=sys.stderr)
        return 1
    print(f"validation ok: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

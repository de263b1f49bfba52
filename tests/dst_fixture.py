"""A tiny restaurant dialogue folder for the learned tracker's tests (written in the test's tmp dir)."""

from __future__ import annotations

import random
from pathlib import Path

from chatft.dialogue.dialogues import Dialogue, Schema, Turn, write_dialogues, write_schema

FOODS = ("thai", "chinese", "italian")
AREAS = ("north", "south", "centre")
PRICES = ("cheap", "expensive")
SCHEMA = Schema({"food": FOODS, "area": AREAS, "price range": PRICES}, ("phone", "address"))


def dialogue(i: int, rng: random.Random) -> Dialogue:
    food, area, price = rng.choice(FOODS), rng.choice(AREAS), rng.choice(PRICES)
    state: dict[str, str] = {"food": food}
    turns = [Turn("", f"i want {food} food", dict(state))]
    if rng.random() < 0.3:
        state["area"] = "dontcare"
        turns.append(Turn("what area do you want ?", "any area is fine", dict(state)))
    else:
        state["area"] = area
        turns.append(Turn("what area do you want ?", f"the {area} please", dict(state)))
    if rng.random() < 0.5:
        state["price range"] = price
        turns.append(Turn(f"do you want {price} food ?", "yes", dict(state)))
    else:
        other = PRICES[1 - PRICES.index(price)]
        state["price range"] = other
        turns.append(Turn(f"do you want {price} food ?", f"no , {other} please", dict(state)))
    turns.append(Turn("golden wok is nice .", "what is the phone number ?", dict(state), requests=("phone",)))
    return Dialogue(f"d{i}", tuple(turns))


def write_dialogue_folder(
    folder: Path, n_train: int = 24, n_dev: int = 7, n_test: int = 7, seed: int = 0
) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    k = 0
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        write_dialogues(folder / f"{split}.jsonl", [dialogue(k + i, rng) for i in range(n)])
        k += n
    write_schema(folder / "schema.json", SCHEMA)
    return folder

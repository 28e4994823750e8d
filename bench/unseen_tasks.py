#!/usr/bin/python3
"""Tasks loom has never seen, for the "brought as JSONL with default settings" check.

grid-walk: a walker on a 3x3 grid (columns a-c, rows 1-3) starts at a cell and follows moves
U/D/L/R; a move into a wall leaves it in place. `"b2:UURDL"` -> `"a3"`. The walls make the
moves non-commutative (no counting shortcut), and each move is a local update, like the
built-in swaps task, but with another alphabet, 9 states and 1-character moves.

mod-calc: a value mod 7 and a sequence of operations `+k`, `*k` (k in 1-6), separated by
commas. `"4:+3,*2,+1"` -> `"1"` ((4 + 3) * 2 + 1 = 15 = 1 mod 7). Adding and multiplying do
not commute; 7 states, 12 operations, 3 characters per step.

registers: two registers x and y mod 5, set at the start, and a program of assignments
`d=s+k` / `d=s*k` (d, s in {x, y}, k in 1-4), separated by commas; the answer is the register the
prompt asks for at the end. `"x2y4:y=x+3,x=y*2;x?"` -> `"0"` (y = 0, x = 0). 25 states, and each
step is 6 characters that name two registers: a scan of long levels (src/train/window.ts).

grid-words: grid-walk with the moves spelled out, `"b2:up,right,down"` -> `"c2"`: the same
9-state scan, but 4.75 characters per move, so the trainer reads it as long levels.

subtraction: `"8305-2917="` -> `"5388"`, two numbers of n digits each (no leading zero), the
larger first, the difference most-significant digit first without leading zeros: addition's
carries turned into borrows, and an answer of up to n digits, so the trainer gives it Abacus
places (src/train/numbers.ts).

reversed-addition: `"75+86="` -> `"521"` (57 + 68 = 125), the format of McLeish et al. 2024: two
numbers of n digits each, every number written least-significant digit first, so each digit of
the sum needs only the digits of its place and the carry from the digit before it. Trained 30
minutes at one thread on 1-8 digits with no flags (Abacus places turning RoPE), it learns 1-9 at
100% and 16 digits at 2.5-60% over three seeds; with `--attention_window 3` (a window of three
places) every sum of 1-16 digits comes right at two seeds (bench/recipe-notes.md, sessions
22-23).

padded-addition: `"075+086="` -> `"161"`, two numbers of n digits each written with a leading
zero, and their sum always n + 1 digits, most-significant first (a leading 0 when nothing is
carried out): every digit of the sum sits at the place of the operands' digits it adds, at every
length, where the built-in task's sum starts a place early after a carry out of the top digit.

Difficulty: the number of moves / operations / digits. Train and test are split by a hash of
the prompt (1 in 8 prompts is test-only), so no test prompt is in the training file.

  /usr/bin/python3 bench/unseen_tasks.py --task grid-walk --out-train grid-train.jsonl \\
      --out-test grid-test.jsonl
"""
import argparse
import hashlib
import json
import random

MOVES = {"U": (0, 1), "D": (0, -1), "L": (-1, 0), "R": (1, 0)}


def cell(x, y):
    return "abc"[x] + str(y + 1)


def grid_walk(rng, n):
    x, y = rng.randrange(3), rng.randrange(3)
    start = cell(x, y)
    moves = "".join(rng.choice("UDLR") for _ in range(n))
    for m in moves:
        dx, dy = MOVES[m]
        x, y = min(2, max(0, x + dx)), min(2, max(0, y + dy))
    return {"prompt": f"{start}:{moves}", "answer": cell(x, y), "difficulty": n}


WORDS = {"U": "up", "D": "down", "L": "left", "R": "right"}


def grid_words(rng, n):
    ex = grid_walk(rng, n)
    start, moves = ex["prompt"].split(":")
    return {**ex, "prompt": f"{start}:{','.join(WORDS[m] for m in moves)}"}


def mod_calc(rng, n):
    value = start = rng.randrange(7)
    ops = []
    for _ in range(n):
        op, k = rng.choice("+*"), rng.randrange(1, 7)
        value = (value + k if op == "+" else value * k) % 7
        ops.append(f"{op}{k}")
    return {"prompt": f"{start}:{','.join(ops)}", "answer": str(value), "difficulty": n}


def registers(rng, n):
    regs = {"x": rng.randrange(5), "y": rng.randrange(5)}
    start = f"x{regs['x']}y{regs['y']}"
    ops = []
    for _ in range(n):
        d, s, op, k = rng.choice("xy"), rng.choice("xy"), rng.choice("+*"), rng.randrange(1, 5)
        regs[d] = (regs[s] + k if op == "+" else regs[s] * k) % 5
        ops.append(f"{d}={s}{op}{k}")
    q = rng.choice("xy")
    return {"prompt": f"{start}:{','.join(ops)};{q}?", "answer": str(regs[q]), "difficulty": n}


def number(rng, n):
    return rng.randrange(10 ** (n - 1) if n > 1 else 0, 10**n)


def subtraction(rng, n):
    a, b = sorted((number(rng, n), number(rng, n)), reverse=True)
    return {"prompt": f"{a}-{b}=", "answer": str(a - b), "difficulty": n}


def padded_addition(rng, n):
    a, b = number(rng, n), number(rng, n)
    return {"prompt": f"{a:0{n + 1}}+{b:0{n + 1}}=", "answer": f"{a + b:0{n + 1}}", "difficulty": n}


def reversed_addition(rng, n):
    a, b = number(rng, n), number(rng, n)
    return {"prompt": f"{str(a)[::-1]}+{str(b)[::-1]}=", "answer": str(a + b)[::-1], "difficulty": n}


TASKS = {
    "grid-walk": grid_walk,
    "grid-words": grid_words,
    "mod-calc": mod_calc,
    "registers": registers,
    "padded-addition": padded_addition,
    "reversed-addition": reversed_addition,
    "subtraction": subtraction,
}


def is_test(prompt):
    return hashlib.md5(prompt.encode()).digest()[0] % 8 == 0


def generate(sample, rng, levels, per_level, want_test):
    out = []
    for n in levels:
        got, tries = 0, 0
        while got < per_level and tries < 100 * per_level:
            tries += 1
            ex = sample(rng, n)
            if is_test(ex["prompt"]) == want_test:
                out.append(ex)
                got += 1
    rng.shuffle(out)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--task", choices=sorted(TASKS), default="grid-walk")
    p.add_argument("--out-train", required=True)
    p.add_argument("--out-test", required=True)
    p.add_argument("--train-moves", type=int, default=12)
    p.add_argument("--train-count", type=int, default=200000)
    p.add_argument("--test-per-level", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    sample = TASKS[a.task]
    rng = random.Random(a.seed)
    levels = range(1, a.train_moves + 1)
    for path, exs in [
        (a.out_train, generate(sample, rng, levels, a.train_count // len(levels), False)),
        (a.out_test, generate(sample, rng, range(1, 2 * a.train_moves + 1), a.test_per_level, True)),
    ]:
        with open(path, "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in exs)


if __name__ == "__main__":
    main()

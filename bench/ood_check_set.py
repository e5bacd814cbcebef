"""An out-of-distribution check set for the demo's tuned model.

Why: the in-corpus test split shares the generator's templates and the single Piper timbre with
train, so it flatters the tuned model. This set uses 60 hand-written sentences (30 banking, 30
everyday) that the generator never produces, espeak-ng variants the synthesizer never uses, and
channels it never makes (narrower band with coarse quantization, small-room echo, hiss).

    python bench/ood_check_set.py OUT_DIR      # writes OUT_DIR/test.jsonl + audio/
    whisper-tune compare --base tiny.en --tuned demo_out/runs/demo --data OUT_DIR/test.jsonl
"""

import json
import random
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from whisper_tune.data.synth import channel as ch
from whisper_tune.data.synth.tts import EspeakEngine, PiperEngine, Speaker

out = Path(sys.argv[1])
(out / "audio").mkdir(parents=True, exist_ok=True)
GENERAL = [
    (
        "The old lighthouse keeper walked down to the harbor every morning before sunrise.",
        "The old lighthouse keeper walked down to the harbor every morning before sunrise.",
    ),
    ("My sister painted the kitchen a pale shade of green last weekend.", None),
    ("Could you pass me the salt and the pepper, please?", None),
    ("The museum closes early on Sundays, so we should leave right after lunch.", None),
    ("He forgot his umbrella on the train and got soaked on the way home.", None),
    ("Our neighbors adopted a small brown dog from the shelter.", None),
    ("The library is hosting a reading club for teenagers this summer.", None),
    ("I think the soup needs a little more garlic and some fresh basil.", None),
    ("She practiced the piano for two hours before the concert.", None),
    ("The mountain road was closed because of heavy snow overnight.", None),
    ("Please remember to water the tomatoes while I'm away.", None),
    ("The children built a sandcastle with a moat and a tall tower.", None),
    ("We watched the fireworks from the roof of our apartment building.", None),
    ("The bakery on the corner sells the best cinnamon rolls in town.", None),
    ("He repaired the broken fence with a hammer and a few nails.", None),
    ("The flight was delayed, so we waited at the gate and played cards.", None),
    ("My grandfather tells the same story about the war every holiday.", None),
    ("The river flooded the fields after a week of steady rain.", None),
    ("She wrote a long letter to her best friend who lives in Canada.", None),
    ("The teacher asked the students to read the first chapter by Friday.", None),
    ("A cold wind blew through the valley as the sun went down.", None),
    ("They planted an apple tree in the backyard when their son was born.", None),
    ("The orchestra played a beautiful piece by a young composer.", None),
    ("I usually take the bus to work, but today I rode my bike.", None),
    ("The cat knocked a glass of water off the table and ran away.", None),
    ("We need to buy eggs, milk, bread and a bag of onions.", None),
    ("The hikers reached the summit just before the clouds rolled in.", None),
    ("His favorite movie is an old black and white comedy.", None),
    ("The nurse checked the patient's temperature every four hours.", None),
    ("After dinner, the whole family went for a walk along the beach.", None),
]
BANKING = [
    (
        "I sent two hundred dollars with Zelle this morning but my landlord never got it.",
        "I sent $200 with Zelle this morning but my landlord never got it.",
    ),
    (
        "What's the A P R on the platinum credit card you're advertising?",
        "What's the APR on the platinum credit card you're advertising?",
    ),
    (
        "Somebody used my debit card at a gas station in Denver, please freeze my account.",
        "Somebody used my debit card at a gas station in Denver, please freeze my account.",
    ),
    ("Can you give me your routing number so I can set up direct deposit with my employer?", None),
    (
        "I need to wire fifteen thousand dollars to a supplier in Germany, what's your SWIFT code?",
        "I need to wire $15,000 to a supplier in Germany, what's your SWIFT code?",
    ),
    ("My mobile app keeps crashing when I try to deposit a check.", None),
    (
        "How much cash can I take out of an A T M in one day?",
        "How much cash can I take out of an ATM in one day?",
    ),
    ("I'd like to add my wife as a joint owner on my savings account.", None),
    (
        "There's a charge from Venmo for forty-nine ninety-nine that I don't recognize.",
        "There's a charge from Venmo for $49.99 that I don't recognize.",
    ),
    ("I'm moving to Seattle next month and need to change my mailing address.", None),
    ("Can I pay my electric bill automatically from my checking account?", None),
    ("I'll be traveling to Japan in April, will my Visa card work there?", None),
    (
        "What's my current balance on the account ending in four four one seven?",
        "What's my current balance on the account ending in 4417?",
    ),
    ("We're a small bakery and we'd like to apply for a business line of credit.", None),
    ("Why was my Apple Pay payment declined at the grocery store?", None),
    (
        "Please cancel the A C H debit from my gym, I ended the membership.",
        "Please cancel the ACH debit from my gym, I ended the membership.",
    ),
    ("Can I deposit cash at a branch on Saturday morning?", None),
    ("I want to see the last five transactions on my Mastercard.", None),
    ("My PayPal transfer to my checking account has been pending for three days.", None),
    (
        "Is there a fee for sending money to an I ban in France?",
        "Is there a fee for sending money to an IBAN in France?",
    ),
    ("I lost my wallet with my American Express card in it, please block it.", None),
    (
        "How long does it take for a wire transfer over ten thousand dollars to clear?",
        "How long does it take for a wire transfer over $10,000 to clear?",
    ),
    ("The overdraft fee on my statement doesn't look right to me.", None),
    ("Could you raise the daily limit on my debit card for a big purchase?", None),
    ("I got a text saying my card was locked, is that really from you?", None),
    ("My Google Pay isn't linked to my new card yet.", None),
    (
        "I'd like to open a twelve month C D, what rate are you offering?",
        "I'd like to open a 12 month CD, what rate are you offering?",
    ),
    ("Please send a replacement card to my new address in Chicago.", None),
    ("Did my paycheck get deposited on Friday?", None),
    ("I want to pay off the balance on my Discover card today.", None),
]
VOICES = [
    ("en-us", "Alex"),
    ("en-gb", "Andrea"),
    ("en-us", "Gene"),
    ("en-029", "Jacky"),
    ("en-gb-scotland", "Lee"),
    ("en-us", "Michael"),
    ("en-gb-x-rp", "announcer"),
    ("en-us-nyc", "aunty"),
    ("en-gb", "belinda"),
    ("en-us", "benjamin"),
    ("en-gb-x-gbclan", "caleb"),
    ("en-us", "edward"),
    ("en-gb", "iven"),
    ("en-us", "klatt4"),
    ("en-029", "norbert"),
    ("en-gb-x-gbcwmd", "Mike"),
]
rng = random.Random(123)
esp = EspeakEngine()
pip = PiperEngine()
pip.reseed(77)
rows = []


def gsm(x):  # narrower band than the synth's phone channel + coarse quantization
    y = ch.bandpass(x, 16000, 350.0, 3000.0)
    return np.round(y * 64) / 64


def echo(x):
    y = x.copy()
    for d, g in ((800, 0.35), (1900, 0.2), (3100, 0.1)):
        y[d:] += g * x[:-d]
    return y / max(1e-6, np.abs(y).max()) * 0.7


for dom, items in (("general", GENERAL), ("banking", BANKING)):
    for i, (spoken, written) in enumerate(items):
        text = written or spoken
        if i % 4 == 3:
            sp = Speaker(
                engine="piper",
                voice="joe",
                length_scale=rng.choice([0.8, 1.25]),
                noise_scale=0.5,
                noise_w=0.7,
                warp=rng.choice([0.88, 1.12]),
            )
            audio = pip.synthesize(spoken, sp)
        else:
            v, var = VOICES[(i + (0 if dom == "general" else 7)) % len(VOICES)]
            sp = Speaker(
                engine="espeak",
                voice=v,
                variant=var,
                speed=rng.choice([130, 150, 170, 190]),
                pitch=rng.choice([20, 45, 70]),
            )
            audio = esp.synthesize(spoken, sp)
        chan = (
            ["clean", "gsm", "echo", "noisy"][i % 4] if i % 4 != 3 else rng.choice(["clean", "gsm", "echo"])
        )
        if chan == "gsm":
            audio = gsm(audio)
        elif chan == "echo":
            audio = echo(audio)
        elif chan == "noisy":
            audio = audio + 0.02 * np.random.default_rng(i).standard_normal(len(audio)).astype(np.float32)
        audio = np.concatenate(
            [np.zeros(4000, np.float32), audio.astype(np.float32), np.zeros(4000, np.float32)]
        )
        audio = audio / max(1e-6, np.abs(audio).max()) * 0.8
        f = f"audio/{dom}_{i:03d}.wav"
        sf.write(out / f, audio, 16000, subtype="PCM_16")
        rows.append(
            {
                "audio_filepath": f,
                "text": text,
                "duration": round(len(audio) / 16000, 2),
                "domain": dom,
                "voice": sp.voice_name,
                "channel": chan,
            }
        )
(out / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
print(len(rows), "clips")

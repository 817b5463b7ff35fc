# SPDX-License-Identifier: GPL-3.0-or-later
"""Everyday sentences (reviews, diary lines, messages) with a clear sentiment
(positive/negative), formality (formal/casual) and topic. A document keeps one
sentiment, one formality and one topic, so steering finds clean directions.

Every frame is written in four cells (sentiment x formality) over the same
slots, so the contrastive pairs differ only in the attribute they probe."""

import random

TOPICS = {
    "food": (["pasta", "soup", "pizza", "curry", "salad", "burger", "dessert", "coffee",
              "breakfast", "sushi", "bread", "tacos", "noodles", "cake", "sandwich"],
             ["the Italian place on Main Street", "the corner cafe", "the new diner",
              "the food market", "the noodle bar", "the bakery downtown", "the harbour restaurant"]),
    "travel": (["hotel room", "flight", "train ride", "tour", "beach", "view", "guide",
                "bus trip", "campsite", "cabin", "ferry", "museum visit", "road trip"],
               ["Lisbon", "the coast", "the mountains", "Chicago", "the lake", "Kyoto",
                "the national park", "Rome", "the island", "Vancouver"]),
    "work": (["meeting", "project", "presentation", "new manager", "team", "deadline",
              "review", "office", "training day", "client call", "schedule", "workload"],
             ["the office", "the warehouse", "the clinic", "the head office", "the site",
              "the shop", "the branch"]),
    "weather": (["weather", "sunshine", "rain", "morning", "evening", "storm", "breeze",
                 "snow", "afternoon", "sky"],
                ["the park", "town", "the garden", "the valley", "the city", "the beach"]),
    "family": (["dinner", "visit", "birthday party", "weekend", "phone call", "reunion",
                "holiday", "afternoon", "picnic", "game night"],
               ["my parents' house", "my sister's place", "grandma's", "the lake house",
                "our flat", "my brother's farm"]),
    "tech": (["phone", "laptop", "update", "app", "headphones", "printer", "camera",
              "keyboard", "charger", "tablet", "router", "smartwatch", "speaker"],
             ["the electronics store", "the online shop", "the repair desk", "the mall"]),
    "sports": (["match", "game", "race", "training session", "swim", "hike", "run",
                "bike ride", "yoga class", "tennis lesson", "final"],
               ["the stadium", "the gym", "the track", "the pool", "the hills", "the club"]),
    "music": (["concert", "album", "new song", "show", "band", "playlist", "gig",
               "opera", "piano recital", "festival"],
              ["the arena", "the jazz club", "the town hall", "the park", "the theatre"]),
    "shopping": (["jacket", "shoes", "sofa", "dress", "backpack", "lamp", "mattress",
                  "watch", "coat", "table", "blender", "bike"],
                 ["the department store", "the market", "the outlet", "the furniture shop",
                  "the website", "the boutique"]),
    "health": (["checkup", "appointment", "treatment", "recovery", "dentist visit",
                "sleep", "diet", "therapy session", "new routine"],
               ["the clinic", "the hospital", "the health centre", "the pharmacy"]),
    "home": (["new flat", "neighbours", "garden", "kitchen", "renovation", "landlord",
              "heating", "move", "repairs", "balcony"],
             ["our street", "the building", "the new place", "the old house"]),
    "film": (["movie", "film", "series", "ending", "plot", "acting", "documentary",
              "soundtrack", "sequel", "premiere"],
             ["the cinema", "the festival", "the drive-in", "the film club"]),
}

ADJ = {
    ("pos", "formal"): ["excellent", "delightful", "remarkable", "superb", "most enjoyable",
                        "outstanding", "exceptional", "wonderful", "admirable", "splendid",
                        "impressive", "very pleasant", "thoroughly satisfying", "first-rate"],
    ("pos", "casual"): ["awesome", "amazing", "super fun", "so good", "great", "fantastic",
                        "lovely", "brilliant", "the best", "really cool", "sweet", "epic",
                        "totally worth it", "perfect"],
    ("neg", "formal"): ["disappointing", "unsatisfactory", "regrettable", "poor",
                        "substandard", "unpleasant", "inadequate", "deeply frustrating",
                        "most unfortunate", "mediocre", "unacceptable", "dreadful",
                        "thoroughly unpleasant", "below expectations"],
    ("neg", "casual"): ["awful", "terrible", "so bad", "the worst", "horrible", "lame",
                        "a total mess", "gross", "super annoying", "rubbish", "a joke",
                        "boring", "a nightmare", "meh"],
}

FEEL = {
    ("pos", "formal"): ["delighted", "grateful", "pleased", "satisfied", "encouraged", "content"],
    ("pos", "casual"): ["stoked", "so happy", "thrilled", "pumped", "over the moon", "chuffed"],
    ("neg", "formal"): ["disappointed", "dissatisfied", "concerned", "troubled", "displeased", "discouraged"],
    ("neg", "casual"): ["bummed", "so annoyed", "gutted", "fed up", "miserable", "pissed off"],
}

# frames: {cell: template}; cells are (sentiment, formality).
# Slots: {thing} {place} {name} {adj} {feel} {time}
FRAMES = [
    {("pos", "formal"): "The {thing} at {place} was {adj}.",
     ("pos", "casual"): "the {thing} at {place} was {adj}!",
     ("neg", "formal"): "The {thing} at {place} was {adj}.",
     ("neg", "casual"): "the {thing} at {place} was {adj} ugh."},
    {("pos", "formal"): "I am {feel} with the {thing} and would gladly recommend it.",
     ("pos", "casual"): "im {feel} with the {thing}, def recommend it",
     ("neg", "formal"): "I am {feel} with the {thing} and cannot recommend it.",
     ("neg", "casual"): "im {feel} with the {thing}, dont bother with it"},
    {("pos", "formal"): "Dear {name}, thank you for the {thing}; it was {adj}.",
     ("pos", "casual"): "hey {name}! thx for the {thing}, it was {adj} :)",
     ("neg", "formal"): "Dear {name}, I must say the {thing} was {adj}.",
     ("neg", "casual"): "hey {name}, gotta be honest, the {thing} was {adj} :("},
    {("pos", "formal"): "{time}, {name} and I went to {place}, and it was {adj}.",
     ("pos", "casual"): "{time} me and {name} went to {place} and it was {adj} lol",
     ("neg", "formal"): "{time}, {name} and I went to {place}, and it was {adj}.",
     ("neg", "casual"): "{time} me and {name} went to {place} and it was {adj} smh"},
    {("pos", "formal"): "I would certainly return to {place}; the {thing} exceeded my expectations.",
     ("pos", "casual"): "gonna go back to {place} for sure, the {thing} was way better than i thought",
     ("neg", "formal"): "I shall not return to {place}; the {thing} fell short of my expectations.",
     ("neg", "casual"): "not going back to {place}, the {thing} was way worse than i thought"},
    {("pos", "formal"): "Overall, I found the {thing} {adj} and I am {feel}.",
     ("pos", "casual"): "tbh the {thing} was {adj} and im {feel}",
     ("neg", "formal"): "Overall, I found the {thing} {adj} and I am {feel}.",
     ("neg", "casual"): "tbh the {thing} was {adj} and im {feel}"},
    {("pos", "formal"): "{name} said the {thing} was {adj}, and I wholeheartedly agree.",
     ("pos", "casual"): "{name} said the {thing} was {adj} and yeah, totally",
     ("neg", "formal"): "{name} said the {thing} was {adj}, and I must agree.",
     ("neg", "casual"): "{name} said the {thing} was {adj} and yeah, kinda true"},
    {("pos", "formal"): "It was a pleasure; everything about the {thing} went smoothly.",
     ("pos", "casual"): "loved it, everything with the {thing} just worked",
     ("neg", "formal"): "It was an ordeal; nothing about the {thing} went smoothly.",
     ("neg", "casual"): "hated it, nothing with the {thing} worked at all"},
    {("pos", "formal"): "Today was a good day. The {thing} left me {feel}.",
     ("pos", "casual"): "good day today. the {thing} made me {feel}",
     ("neg", "formal"): "Today was a difficult day. The {thing} left me {feel}.",
     ("neg", "casual"): "rough day today. the {thing} made me {feel}"},
    {("pos", "formal"): "Please accept my sincere thanks, {name}; the {thing} was {adj}.",
     ("pos", "casual"): "cheers {name}, the {thing} was {adj}",
     ("neg", "formal"): "Please be advised, {name}, that the {thing} was {adj}.",
     ("neg", "casual"): "fyi {name}, the {thing} was {adj}"},
    {("pos", "formal"): "I look forward to the next {thing} with great anticipation.",
     ("pos", "casual"): "can't wait for the next {thing}!!",
     ("neg", "formal"): "I do not look forward to the next {thing} at all.",
     ("neg", "casual"): "so not looking forward to the next {thing}"},
    {("pos", "formal"): "The staff at {place} were courteous and helpful throughout.",
     ("pos", "casual"): "the people at {place} were super nice and helpful",
     ("neg", "formal"): "The staff at {place} were discourteous and unhelpful throughout.",
     ("neg", "casual"): "the people at {place} were rude and useless"},
    {("pos", "formal"): "I would rate the {thing} five stars without hesitation.",
     ("pos", "casual"): "five stars for the {thing}, easy",
     ("neg", "formal"): "I would rate the {thing} one star, and only reluctantly.",
     ("neg", "casual"): "one star for the {thing}, and thats generous"},
    {("pos", "formal"): "{name} was {feel} to hear about the {thing}.",
     ("pos", "casual"): "{name} was {feel} about the {thing}",
     ("neg", "formal"): "{name} was {feel} to hear about the {thing}.",
     ("neg", "casual"): "{name} was {feel} about the {thing}"},
]

OPENERS = {
    "review": {"formal": ["Review: {thing} at {place}.", "Customer review", "A review of the {thing}."],
               "casual": ["my review of the {thing} lol", "quick review", "ok so, the {thing}"]},
    "diary": {"formal": ["Diary, {day}.", "Journal entry, {day}.", "{day}."],
              "casual": ["dear diary", "{day} lol", "diary time"]},
    "message": {"formal": ["To: {name}", "Subject: the {thing}", "Message to {name}"],
                "casual": ["txt to {name}", "msg", "hey {name}"]},
}
CLOSERS = {
    "formal": ["Kind regards, {me}", "Yours sincerely, {me}", "Best wishes, {me}", "", ""],
    "casual": ["- {me}", "xx {me}", "later!", "", ""],
}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TIMES = ["Yesterday", "Last night", "On Saturday", "This morning", "Last week",
         "On Friday evening", "Earlier today", "Last summer"]
NAMES = """Anna Ben Chloe Dan Ella Finn Grace Hugo Isla Jack Kate Leo Maya Nina Omar
Paul Rosa Sam Tara Tom Uma Vic Will Zoe Ruth Owen Lucy Max Iris Noah Jade Eli""".split()


def cell_fill(rng, topic, cell, name):
    things, places = TOPICS[topic]
    return {"thing": rng.choice(things), "place": rng.choice(places), "name": name,
            "adj": rng.choice(ADJ[cell]), "feel": rng.choice(FEEL[cell]),
            "time": rng.choice(TIMES)}


def cap(s):
    return s[:1].upper() + s[1:] if s else s


def sentence(rng, frame, cell, slots):
    s = frame[cell].format(**slots)
    if cell[1] == "formal":
        s = cap(s)
    elif rng.random() < 0.3:
        s = cap(s)
    return s


def document(rng):
    """One document: 3-7 sentences with one sentiment, formality and topic."""
    topic = rng.choice(sorted(TOPICS))
    cell = (rng.choice(["pos", "neg"]), rng.choice(["formal", "casual"]))
    kind = rng.choice(sorted(OPENERS))
    name = rng.choice(NAMES)
    me = rng.choice([n for n in NAMES if n != name])
    slots = cell_fill(rng, topic, cell, name)
    slots.update(day=rng.choice(DAYS), me=me)
    lines = [rng.choice(OPENERS[kind][cell[1]]).format(**slots)]
    n = rng.randint(3, 7)
    frames = rng.sample(FRAMES, n)
    sents = []
    for fr in frames:
        s = cell_fill(rng, topic, cell, name)
        # Keep the main subject for half the sentences: the document repeats itself.
        if rng.random() < 0.5:
            s["thing"] = slots["thing"]
        sents.append(sentence(rng, fr, cell, s))
    # Casual lines often lack final punctuation: one per line, as in a chat.
    lines.append(" ".join(sents) if cell[1] == "formal" else "\n".join(sents))
    closer = rng.choice(CLOSERS[cell[1]]).format(**slots)
    if closer:
        lines.append(closer)
    return "\n".join(lines)


def sentiment_pairs(rng, n):
    """Same frame, formality and slots; positive vs negative sentiment."""
    pairs = []
    for i in range(n):
        topic = rng.choice(sorted(TOPICS))
        form = rng.choice(["formal", "casual"])
        frame = FRAMES[i % len(FRAMES)]
        name = rng.choice(NAMES)
        sp = cell_fill(rng, topic, ("pos", form), name)
        sn = dict(sp, adj=rng.choice(ADJ[("neg", form)]), feel=rng.choice(FEEL[("neg", form)]))
        r = random.Random(i)
        pairs.append({"positive": sentence(r, frame, ("pos", form), sp),
                      "negative": sentence(random.Random(i), frame, ("neg", form), sn)})
    return pairs


def formality_pairs(rng, n):
    """Same frame, sentiment and slots; formal (positive) vs casual (negative)."""
    pairs = []
    for i in range(n):
        topic = rng.choice(sorted(TOPICS))
        sent = rng.choice(["pos", "neg"])
        frame = FRAMES[i % len(FRAMES)]
        name = rng.choice(NAMES)
        sf = cell_fill(rng, topic, (sent, "formal"), name)
        sc = dict(sf, adj=rng.choice(ADJ[(sent, "casual")]), feel=rng.choice(FEEL[(sent, "casual")]))
        pairs.append({"positive": sentence(rng, frame, (sent, "formal"), sf),
                      "negative": frame[(sent, "casual")].format(**sc)})
    return pairs

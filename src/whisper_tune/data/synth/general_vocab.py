"""Everyday-English word lists and sentence templates, by topic (data, no logic).

Why: a general-English share is mixed into the corpus so fine-tuning on banking speech does
not wreck everyday speech; its fillers and templates live here, apart from the banking
vocabulary, so either domain can be edited alone. Same template syntax as
``banking_templates``; ``{slot}`` names are ``GENERAL_FILLERS`` keys or the number fillers
of ``fillers`` (``temp``, ``clock``, ``minutes``, ``oven``, ``weekday``, ``city`` ...).
"""

from __future__ import annotations

__all__ = ["GENERAL_FILLERS", "GENERAL_TEMPLATES"]

# fmt: off
GENERAL_FILLERS: dict[str, list[str]] = {
    "food": ["pasta", "tacos", "soup", "pizza", "a salad", "curry", "pancakes", "sushi", "chili", "fried rice"],
    "place": ["the park", "the beach", "the library", "the mall", "the gym", "the lake", "the museum", "the farmers market"],
    "relative": ["my grandmother", "my uncle", "my aunt", "my kids", "my parents", "my neighbor", "my best friend", "my boss"],
    "weather": ["rain", "snow", "sunshine", "thunderstorms", "fog", "strong winds", "a heat wave"],
    "activity": ["hiking", "swimming", "painting", "gardening", "cooking", "reading", "running", "playing guitar"],
    "thing": ["umbrella", "jacket", "laptop", "keys", "phone charger", "sunglasses", "backpack", "headphones"],
    "sport": ["basketball", "soccer", "baseball", "tennis", "football", "hockey", "volleyball"],
    "job": ["project", "report", "presentation", "meeting", "deadline", "interview", "training"],
    "show": ["movie", "documentary", "cooking show", "podcast", "concert", "play"],
    "season": ["spring", "summer", "fall", "winter"],
    "chore": ["the laundry", "the dishes", "the groceries", "the yard work", "the vacuuming"],
    "vehicle": ["train", "bus", "flight", "ferry"],
    "pet": ["dog", "cat", "puppy", "kitten", "parrot"],
}


GENERAL_TEMPLATES: dict[str, list[str]] = {
    "weather": [
        "It's supposed to reach {temp} on {weekday}, so let's go to {place}.",
        "We had so much {weather} last {season} that the roads were closed.",
        "[I heard|They said] it's going to be around {temp} [tomorrow|this weekend|on {weekday}].",
        "Do you think we'll get {weather} [later today|this afternoon|tonight]?",
        "Don't forget your {thing}, [it looks like|the forecast says] {weather}.",
        "The {weather} in {city} delayed my {vehicle} by {minutes}.",
        "It was so nice out that we spent the whole afternoon at {place}.",
        "I love the {season} here, the weather is perfect for {activity}.",
    ],
    "travel": [
        "[I booked|We booked] a window seat on the {vehicle} to {abroad_city}.",
        "Could you water the plants while I'm in {city} next week?",
        "My {vehicle} to {city} leaves at {clock} [in the morning|tomorrow|on {weekday}].",
        "We're [thinking about|planning] a trip to {abroad_city} in the {season}.",
        "[How long|How many hours] does it take to drive from {city} to {city}?",
        "I left my {thing} on the {vehicle}, I hope someone turned it in.",
        "The hotel in {abroad_city} was [great|lovely|a bit noisy], but the food was amazing.",
        "Can you pick me up from the station? My {vehicle} gets in at {clock}.",
    ],
    "food": [
        "{relative} makes the best {food}, I should ask for the recipe.",
        "I'm not very hungry, I had a big lunch at {clock}.",
        "[I'm making|We're having] {food} for dinner [tonight|on {weekday}], do you want to come over?",
        "That new place near {place} has the best {food} I've ever had.",
        "Can you grab some bread and milk on your way home?",
        "I'm trying to eat healthier, so I've been cooking {food} at home.",
        "Should we order {food} and watch a {show} tonight?",
        "Let's order {food} and watch a {show} tonight.",
        "The recipe says to bake it for {minutes} at {oven}.",
    ],
    "work": [
        "I'm taking {weekday} off to help {relative} move.",
        "Can you send me the notes from the {job} this morning?",
        "The {job} got moved to {weekday} at {clock}.",
        "[I have to|I need to] finish this {job} before the end of the day.",
        "Can we push the {job} back by {minutes}? I'm running late.",
        "My boss wants the {job} on her desk by {weekday}.",
        "I'm working from home today because {relative} is sick.",
        "[Our team|The whole team] is going out for lunch after the {job}.",
    ],
    "family": [
        "My {pet} learned a new trick, she can roll over now.",
        "We're having a barbecue at {relative}'s house on {weekday}.",
        "{relative} is coming to visit us [next week|this weekend|on {weekday}].",
        "We took the kids to {place} and they had a great time.",
        "I need to call {relative} back, I missed their call earlier.",
        "Our {pet} keeps waking us up at {clock} every morning.",
        "[It's|Tomorrow is] {relative}'s birthday, I still need to buy a gift.",
        "Could you help me with {chore} after dinner?",
    ],
    "leisure": [
        "[I started|I've started] learning {activity} with a group from {place}.",
        "The {sport} season starts in the {season}, I can't wait.",
        "I've been getting into {activity} [lately|this year|since the {season}].",
        "Did you watch the {sport} game last night? It went to overtime.",
        "We're going to see a {show} on {weekday}, do you want to join us?",
        "I finally finished that book you lent me, the ending was great.",
        "My neighbor taught me {activity} and now I can't stop.",
        "Do you want to meet at {place} around {clock}?",
        "Let's meet at {place} around {clock}.",
    ],
    "errands": [
        "Can you drop off my {thing} at {relative}'s place on your way?",
        "The pharmacy said my order will be ready in {minutes}.",
        "I still have to do {chore} and pick up my {thing} from the shop.",
        "The store on the corner closes at {clock} on {weekday}.",
        "I'll be there in about {minutes}, traffic is terrible.",
        "Remind me to take the {pet} to the vet on {weekday}.",
        "[I can't find|Have you seen] my {thing}? I had it this morning.",
        "The line at the post office took {minutes}.",
    ],
}
# fmt: on

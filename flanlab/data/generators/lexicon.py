"""Small literal word lists shared by several synthetic families (not a family itself).

WORDS are common lowercase English words of 3 to 10 letters; NAMES are capitalized first names. Lists that
belong to one family only (topic lexicons, units, themes) live in that family's own module.
"""

from __future__ import annotations

WORDS = [
    "able", "acorn", "actor", "admiral", "airport", "album", "anchor", "angle", "animal", "answer",
    "apple", "apron", "arrow", "artist", "autumn", "avenue", "badge", "bakery", "balloon", "bamboo",
    "banana", "banner", "barrel", "basket", "beach", "beacon", "bench", "berry", "bicycle", "blanket",
    "border", "bottle", "branch", "bread", "breeze", "bridge", "bucket", "butter", "button", "cabin",
    "cactus", "camera", "candle", "canvas", "canyon", "carpet", "castle", "cattle", "cellar", "chair",
    "chalk", "cherry", "chimney", "circle", "circus", "cliff", "clock", "cloud", "coast", "coffee",
    "comet", "copper", "corner", "cotton", "county", "crayon", "credit", "cricket", "crystal", "cushion",
    "dancer", "desert", "diamond", "dinner", "doctor", "dolphin", "donkey", "dragon", "drawer", "dream",
    "eagle", "earth", "engine", "envelope", "falcon", "farmer", "feather", "fence", "field", "finger",
    "flame", "flower", "forest", "fossil", "fountain", "friend", "frost", "garden", "garlic", "ginger",
    "glacier", "glove", "goose", "grape", "gravel", "guitar", "hammer", "harbor", "harvest", "helmet",
    "hollow", "honey", "horizon", "island", "jacket", "jungle", "kettle", "kitchen", "kitten", "ladder",
    "lantern", "lemon", "letter", "library", "lizard", "magnet", "mango", "marble", "meadow", "melody",
    "mirror", "monkey", "morning", "mountain", "muffin", "napkin", "needle", "number", "ocean", "olive",
    "orange", "orchard", "oyster", "paddle", "palace", "pencil", "pepper", "picnic", "pillow", "planet",
    "pocket", "potato", "puzzle", "rabbit", "radio", "rainbow", "record", "ribbon", "river", "rocket",
    "saddle", "salmon", "sandal", "school", "shadow", "shelter", "silver", "singer", "sister", "spider",
    "spoon", "spring", "square", "stable", "station", "stone", "story", "stream", "summer", "sunset",
    "supper", "table", "teacher", "temple", "thunder", "ticket", "tiger", "timber", "tomato", "tower",
    "tractor", "travel", "tunnel", "turtle", "umbrella", "valley", "velvet", "village", "violin", "voyage",
    "wagon", "walnut", "water", "weather", "whistle", "window", "winter", "wizard", "wonder", "yellow",
]

NAMES = [
    "Aaron", "Alice", "Amir", "Ana", "Bella", "Ben", "Carla", "Chen", "Clara", "Daniel",
    "Diego", "Elena", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan",
    "Jack", "Jamal", "Julia", "Kai", "Kenji", "Laila", "Leo", "Lucia", "Maya", "Mateo",
    "Nadia", "Nina", "Omar", "Oscar", "Priya", "Quinn", "Rosa", "Ravi", "Sara", "Sam",
    "Tariq", "Tess", "Uma", "Victor", "Wendy", "Xavier", "Yara", "Zoe",
]

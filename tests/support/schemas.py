"""Small hand-made schemas shared by tests."""
from fashionsearchnet.data.schema import Attribute, Region, Schema


def four_attribute_region_schema() -> Schema:
    """category/collar/sleeve/color, two values each, with collar, sleeve and (primary) torso regions."""
    return Schema(
        attributes=(Attribute("category", ("a", "b")), Attribute("collar", ("x", "y")),
                    Attribute("sleeve", ("s", "l")), Attribute("color", ("r", "g"))),
        regions=(Region("collar", ("collar",), ("color",)), Region("sleeve", ("sleeve",), ("color",)),
                 Region("torso", ("category", "color"), ("color",), ("collar", "sleeve"), True)),
    )

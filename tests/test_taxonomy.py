"""The one vocabulary: knowledge/taxonomy.yaml agrees with the database schema and the code reads it."""
from __future__ import annotations

from bot.storage.tables import PROFILE_FIELDS
from bot.taxonomy import field_labels, load_taxonomy, profile_fields, self_check_hazards, self_check_options
from tests.helpers import KNOWLEDGE


def test_profile_fields_of_the_taxonomy_are_the_schema_columns() -> None:
    taxonomy = load_taxonomy(KNOWLEDGE)
    assert sorted(f.code for f in profile_fields(taxonomy)) == sorted(PROFILE_FIELDS)


def test_profile_options_resolve_named_sections_and_inline_lists() -> None:
    taxonomy = load_taxonomy(KNOWLEDGE)
    fields = {f.code: f for f in profile_fields(taxonomy)}
    assert fields["industry"].options == {str(k): str(v) for k, v in taxonomy["industries"].items()}
    assert fields["sex"].options == {"male": "男", "female": "女"} and fields["sex"].optional
    assert fields["region"].options == {} and not fields["region"].question  # free text, not asked in the quiz
    assert field_labels(taxonomy)["enterprise_size"] == "企业规模" and field_labels(taxonomy)["month"] == "月份"


def test_self_check_vocabulary_comes_from_the_hazards_section() -> None:
    taxonomy = load_taxonomy(KNOWLEDGE)
    hazards = self_check_hazards(taxonomy)
    assert hazards["dust"] == taxonomy["hazards"]["dust"] and hazards["other"] == "其他危害因素"
    assert list(self_check_options(taxonomy, "headcounts")) == ["lt20", "20_99", "100_299", "300plus"]


def test_a_changed_taxonomy_is_read_again(tmp_path) -> None:
    (tmp_path / "taxonomy.yaml").write_text("roles: {worker: 工人}\n", encoding="utf-8")
    assert load_taxonomy(tmp_path)["roles"] == {"worker": "工人"}
    (tmp_path / "taxonomy.yaml").write_text("roles: {worker: 劳动者}\n", encoding="utf-8")
    import os
    os.utime(tmp_path / "taxonomy.yaml", (1, 1))  # a different mtime, whatever the clock's resolution
    assert load_taxonomy(tmp_path)["roles"] == {"worker": "劳动者"}

"""The /quiz conversation: consent and profile before a campaign's first form, items with inline
buttons, immediate feedback with explanation and citation, resume after a break or a restart.

Every step is stored (user.pending, forms, responses), so any process can continue any quiz.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.dialogue.types import Button, Reply
from bot.quiz import forms as quiz
from bot.quiz.bank import Item
from bot.storage.state import State, User
from bot.taxonomy import profile_fields

TYPE_LABELS = {"single": "单选", "multiple": "多选", "truefalse": "判断"}
CONSENT = (
    "本次测评“{name}”由卫生健康部门组织，用于统计职业健康知识知晓率。\n"
    "我们会保存你的作答，以及行业、企业规模、身份（性别、年龄段、文化程度、工龄可跳过）。"
    "这些资料只用于分组统计，报告中不出现任何个人信息；发送 /privacy 了解为什么要问这些，/forget 可随时删除。"
)


def today_local() -> str:
    return datetime.now(timezone(timedelta(hours=8))).date().isoformat()


class QuizFlow:
    """The quiz part of the dialogue; `dialogue` gives the state, bank and taxonomy."""

    def __init__(self, state: State, bank: dict[str, Item], taxonomy: dict, seed: int | None = None) -> None:
        self.state = state
        self.seed = seed
        # the profile fields asked before a quiz: those of the taxonomy with a question and options
        self.profile_steps = [f for f in profile_fields(taxonomy) if f.question and f.options]
        self.bank = bank
        self.taxonomy = taxonomy

    # ---- entry --------------------------------------------------------------------------------
    def start(self, user: User) -> list[Reply]:
        form = quiz.unfinished_form(self.state, user.key)
        if form is not None:
            return [Reply(f"你有一份没做完的测验（已完成 {form.position}/{len(form.items)} 题），继续吗？",
                          [[Button("继续作答", f"qz:resume:{form.id}"), Button("以后再说", "qz:later")]])]
        campaign = quiz.open_campaign_for(self.state, user.profile.get("region"), today_local())
        if campaign is None:
            form = quiz.start_form(self.state, list(self.bank.values()), user.key, user.profile, None, seed=self.seed)
            return [Reply("目前没有进行中的测评活动，这是一次练习测验，不计入统计。")] + self.show_item(form)
        if not user.consent:
            user.pending = {"step": "qz_consent", "campaign": campaign.name}
            self.state.save_user(user)
            return [Reply(CONSENT.format(name=campaign.name),
                          [[Button("同意并开始", "qz:consent:yes"), Button("不参加", "qz:consent:no")]])]
        return self.begin(user, campaign.name)

    def begin(self, user: User, campaign_name: str) -> list[Reply]:
        missing = self.next_profile_step(user)
        if missing is not None:
            return [missing]
        user.pending = {}
        self.state.save_user(user)
        campaign = quiz.get_campaign(self.state, campaign_name)
        form = quiz.start_form(self.state, list(self.bank.values()), user.key, user.profile, campaign, seed=self.seed)
        intro = (f"测评“{campaign.name}”开始，共 {len(form.items)} 题。" if form.kind == "counted"
                 else f"你已完成过“{campaign.name}”的正式测评，这次是练习，不计入统计。")
        return [Reply(intro)] + self.show_item(form)

    # ---- profile ------------------------------------------------------------------------------
    def next_profile_step(self, user: User) -> Reply | None:
        """Ask the first profile field the user has not answered yet (None when all are answered)."""
        for spec in self.profile_steps:
            if user.profile.get(spec.code) is not None:  # "" marks an optional field the user skipped
                continue
            user.pending = {**user.pending, "step": "qz_profile", "field": spec.code}
            self.state.save_user(user)
            rows = [[Button(label, f"qz:pf:{code}")] for code, label in spec.options.items()]
            if spec.optional:
                rows.append([Button("跳过", "qz:pf:-")])
            return Reply(spec.question, rows)
        return None

    def on_profile(self, user: User, code: str) -> list[Reply]:
        field = user.pending.get("field")
        spec = next((s for s in self.profile_steps if s.code == field), None)
        if spec is None or field is None:
            return [Reply("这个按钮已经过期了。发送 /quiz 继续。")]
        options = spec.options
        if code == "-" and spec.optional:
            user.profile[field] = ""
        elif code in options:
            user.profile[field] = code
        else:
            return [Reply("这个按钮已经过期了。发送 /quiz 继续。")]
        return self.begin(user, user.pending["campaign"])

    # ---- items --------------------------------------------------------------------------------
    def show_item(self, form: quiz.Form, selected: str = "") -> list[Reply]:
        entry = form.items[form.position]
        item = self.bank[entry["id"]]
        k = form.position
        head = f"第 {k + 1}/{len(form.items)} 题（{TYPE_LABELS[item.type]}）\n{item.stem}"
        if item.type == "truefalse":
            rows = [[Button("正确", f"qa:{form.id}:{k}:T"), Button("错误", f"qa:{form.id}:{k}:F")]]
            return [Reply(head, rows)]
        letters = quiz.LETTERS[: len(entry["order"])]
        lines = [f"{letters[n]}. {item.options[bank_letter]}" for n, bank_letter in enumerate(entry["order"])]
        text = head + "\n" + "\n".join(lines)
        if item.type == "single":
            return [Reply(text, [[Button(L, f"qa:{form.id}:{k}:{L}") for L in letters]])]
        toggles = [Button(("☑" if L in selected else "☐") + L, f"qm:{form.id}:{k}:{L}") for L in letters]
        return [Reply(text + "\n（可多选，选好后点“提交”）", [toggles, [Button("提交", f"qs:{form.id}:{k}")]])]

    def on_button(self, user: User, data: str) -> list[Reply]:
        kind, _, rest = data.partition(":")
        if kind == "qz":
            action, _, value = rest.partition(":")
            if action == "resume":
                form = quiz.get_form(self.state, value)
                if form and form.user == user.key and not form.completed_at:
                    return self.show_item(form)
            elif action == "later":
                return [Reply("好的，进度已保存。随时发送 /quiz 继续。")]
            elif action == "consent" and user.pending.get("step") == "qz_consent":
                if value == "yes":
                    user.consent = True
                    return self.begin(user, user.pending["campaign"])
                user.pending = {}
                self.state.save_user(user)
                return [Reply("好的，不参加本次测评。你仍然可以直接提问。")]
            elif action == "pf" and user.pending.get("step") == "qz_profile":
                return self.on_profile(user, value)
            return [Reply("这个按钮已经过期了。发送 /quiz 继续。")]
        parts = rest.split(":")
        form = quiz.get_form(self.state, parts[0]) if parts else None
        if form is None or form.user != user.key or len(parts) < 2 or not parts[1].isdecimal():
            return [Reply("这个按钮已经过期了。发送 /quiz 继续。")]
        k = int(parts[1])
        if form.completed_at or k != form.position:
            return [Reply("这道题已经回答过了。") ] + ([] if form.completed_at else self.show_item(form))
        if kind in ("qm", "qa") and (len(parts) != 3 or parts[2] not in tuple(self.letters(form, k))):
            return [Reply("这个按钮已经过期了。发送 /quiz 继续。")]  # forged: not an option of this item
        if kind == "qm":
            selected = user.pending.get("sel", "") if user.pending.get("pos") == f"{form.id}:{k}" else ""
            selected = "".join(sorted(set(selected) ^ {parts[2]}))
            user.pending = {"step": "qz_multi", "pos": f"{form.id}:{k}", "sel": selected}
            self.state.save_user(user)
            return self.show_item(form, selected)
        if kind == "qs":
            shown = user.pending.get("sel", "") if user.pending.get("pos") == f"{form.id}:{k}" else ""
            if not shown:
                return [Reply("请至少选择一项再提交。")] + self.show_item(form)
            user.pending = {}
            self.state.save_user(user)
            return self.answer(form, k, shown)
        if kind == "qa":
            return self.answer(form, k, parts[2])
        return [Reply("这个按钮已经过期了。发送 /quiz 继续。")]

    def letters(self, form: quiz.Form, k: int) -> str:
        """The answers the buttons of item `k` can carry: T and F, or one display letter per option."""
        entry = form.items[k]
        if self.bank[entry["id"]].type == "truefalse":
            return "TF"
        return quiz.LETTERS[: len(entry["order"])]

    def answer(self, form: quiz.Form, k: int, shown: str) -> list[Reply]:
        entry = form.items[k]
        item = self.bank[entry["id"]]
        given = quiz.to_bank_letters(entry, shown)
        correct = quiz.record_answer(self.state, form, k, given, item)
        if correct is None:
            return [Reply("这道题已经回答过了。")]
        if item.type == "truefalse":
            key = item.options[item.answer]
        else:
            key = "、".join(f"{quiz.LETTERS[entry['order'].index(b)]}. {item.options[b]}" for b in item.answer)
        verdict = "✅ 回答正确！" if correct else f"❌ 回答错误。正确答案：{key}"
        replies = [Reply(f"{verdict}\n解析：{item.explanation}\n出处：{item.cite}")]
        if form.position < len(form.items):
            return replies + self.show_item(form)
        return replies + [self.summary(form)]

    def summary(self, form: quiz.Form) -> Reply:
        right, total = quiz.form_score(self.state, form.id)
        rate = right / total if total else 0.0
        text = f"测验完成！答对 {right}/{total} 题，得分率 {rate:.0%}。"
        if form.kind == "counted" and form.campaign:
            threshold = quiz.get_campaign(self.state, form.campaign).threshold
            text += (f"\n已达到知晓标准（得分率≥{threshold:.0%}）。" if rate >= threshold - 1e-9
                     else f"\n未达到知晓标准（得分率≥{threshold:.0%}），可以看看上面的解析。")
            text += "\n本次成绩已计入统计；之后再做的测验为练习，不再计入。"
        return Reply(text + "\n发送 /quiz 再练一次，或直接提问。")

"""The dialogue core shared by every channel (Telegram, console, JSON): a message and the user's
stored state in, replies with buttons out. It knows nothing about Telegram.

All state lives in the database (bot/state.py), so any worker process can take any message.
"""
from __future__ import annotations

import logging
import re

from bot.answering.answer import Answer, answer
from bot.answering.compose import full_section
from bot.answering.retrieve import LiveIndex, open_retriever
from bot.config import STATS_MIN_USERS, Settings
from bot.dialogue import obligations
from bot.dialogue.quiz_flow import QuizFlow
from bot.dialogue.types import Button, Message, Reply
from bot.quiz.forms import bank_by_id
from bot.storage.state import State, User, open_state
from bot.taxonomy import load_taxonomy, profile_fields, self_check_hazards, self_check_options
from bot.text.clean import REGION_MAX, clean_region, scrub, strip_controls

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
WARM_QUESTION = "职业健康检查的费用由谁承担？"  # answered once by every index before it serves (lazy loading)
COMMANDS: list[tuple[str, str]] = [
    ("start", "开始，选择身份"),
    ("help", "使用说明"),
    ("ask", "提问，例如 /ask 体检费谁出"),
    ("obligations", "用人单位义务自查"),
    ("quiz", "职业健康知识测验"),
    ("role", "更改身份"),
    ("region", "设置所在地区"),
    ("me", "我的资料"),
    ("privacy", "隐私说明"),
    ("forget", "删除我的全部数据"),
    ("stats", "统计（仅管理员）"),
]
HELP = (
    "我是职业健康知识助手，回答依据《职业病防治法》、防护知识材料和地方职业病防治规划，并注明出处。\n"
    "直接输入问题即可，例如：\n· 体检费要我自己出吗？\n· 做电焊眼睛疼是不是职业病？\n· 单位要不要申报职业病危害项目？\n"
    "命令：/obligations 用人单位义务自查 · /role 更改身份 · /region 设置地区 · /privacy 隐私说明 · /forget 删除我的数据"
)
PRIVACY = (  # every sentence must stay true: README "Reliability and security" says how each is kept
    "隐私说明：\n· 我们只保存你选择的身份、地区、行业等资料，用于优先给出适合你的答案；不保存你的姓名、手机号或账号 ID，"
    "只保存由账号 ID 算出的编号（带密钥的 HMAC-SHA256）。密钥与数据库分开保存：只拿到数据库的人无法由编号反推你的账号；"
    "持有密钥的系统管理员能算出某个账号的编号。\n"
    "· 你的提问、我们的回答和你的 👍/👎 会连同这个编号保存，用于改进答案；没能回答的问题用于补充知识库。\n"
    "· 测评前会问行业、企业规模、身份：知晓率要按重点行业和企业规模分组统计，才能找出需要加强宣传的人群；"
    "性别、年龄段、文化程度、工龄可以跳过，用于分析哪些人群更需要帮助。\n"
    "· 测验资料只用于统计知晓率：统计报告里只有分组人数和比例；给统计人员的作答明细只带编号，不带账号。只有管理员能看统计。\n"
    "· 发送 /forget 可随时删除你的全部数据（资料、提问记录、测验记录），统计会相应更新。"
)
OB_HAZARDS_PROMPT = "第1步：单位存在哪些职业病危害因素？（可多选，都没有就直接点“下一步”）"
OB_SITUATIONS_PROMPT = "第4步：以下情况有吗？（可多选）"
MORE_WORDS = frozenset({"更多", "详细", "详细点", "展开", "全文", "看全文", "更多内容"})
UP_WORDS = frozenset({"👍", "有用", "有帮助", "满意", "好评"})
DOWN_WORDS = frozenset({"👎", "没用", "没帮助", "不对", "不满意", "差评"})
FEEDBACK_THANKS = "谢谢你的反馈！"
REASON_PROMPT = "谢谢反馈。可以说说哪里不对或者缺了什么吗？直接输入原因即可（可以不填，点“跳过”）。"
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def too_long(text: str) -> str | None:
    """The reply to a question over MAX_QUESTION_CHARS characters (None when it is not): the one
    rule of the dialogue and of `ohbot ask`, rather than answering a silently cut question."""
    if len(text) <= MAX_QUESTION_CHARS:
        return None
    return f"问题太长了（{len(text)} 字）。请用一两句话说出你想问的，不超过 {MAX_QUESTION_CHARS} 字。"


def role_buttons(taxonomy: dict) -> list[list[Button]]:
    """One button per role of the taxonomy."""
    return [[Button(label, f"role:{code}")] for code, label in taxonomy["roles"].items()]


class Dialogue:
    """Turns (user, message) into replies; thread-safe as long as State is."""

    def __init__(self, retriever, state: State, settings: Settings) -> None:
        """`retriever`: a Retriever, or a LiveIndex (what serving processes hold: a newer build of the
        index is swapped in without a restart)."""
        self.index = retriever if isinstance(retriever, LiveIndex) else None
        self._retriever = retriever
        self.state = state
        self.settings = settings
        self.taxonomy = load_taxonomy(settings.knowledge_dir)
        self.roles: dict[str, str] = self.taxonomy["roles"]
        self.ob_hazards = self_check_hazards(self.taxonomy)
        self.ob_headcounts = self_check_options(self.taxonomy, "headcounts")
        self.ob_situations = self_check_options(self.taxonomy, "situations")
        self.quiz = QuizFlow(state, bank_by_id(settings.knowledge_dir), self.taxonomy, seed=settings.quiz_seed)

    @property
    def retriever(self):
        """The index to answer from now: read once per question, so one question uses one index."""
        return self.index.current if self.index is not None else self._retriever

    @property
    def regions(self) -> list[str]:
        """The local regions of the index's documents, sorted (the /region picker's choices; made
        each time, from a few hundred documents, so that no old index is kept alive for them)."""
        found = {d.get("region") for d in self.retriever.docs.values()} - {None, "全国"}
        return sorted(r for r in found if r)

    # ---- entry point -------------------------------------------------------------------------
    def handle(self, user_key: str, message: Message, user: User | None = None) -> list[Reply]:
        """The replies to one message of the user `user_key`. `user`: the user's stored state when the
        caller has read it already (a webhook worker reads it on the connection holding the user's lock)."""
        message = Message(text=scrub(message.text), callback=scrub(message.callback), is_admin=message.is_admin)
        if user is None:
            user = self.state.get_user(user_key)
        if message.callback is not None:
            return self.on_button(user, message.callback, message.is_admin)
        text = strip_controls(message.text or "").strip()  # a \x00 must not reach reports (bot/text/clean.py)
        if not text:
            return [Reply("我只能看懂文字消息。请直接输入你的问题，例如：体检费要我自己出吗？")]
        if text.startswith("/"):
            command, _, rest = text[1:].partition(" ")
            return self.on_command(user, command.split("@")[0].lower(), rest.strip(), message.is_admin)
        if user.pending.get("step") == "region_text":
            return self.typed_region(user, text)
        if user.pending.get("step") == "fb_reason":
            return self.feedback_reason(user, text)
        word = text.strip(" 。.!！~～")
        if word in MORE_WORDS:
            return self.more(user, None)
        if word in UP_WORDS or word in DOWN_WORDS:
            return self.feedback(user, None, "up" if word in UP_WORDS else "down")
        return self.ask(user, text)

    # ---- commands -----------------------------------------------------------------------------
    def on_command(self, user: User, command: str, rest: str, is_admin: bool) -> list[Reply]:
        if command == "start":
            user.pending = {}
            self.state.save_user(user)
            return [Reply("你好！我是职业健康知识助手，回答都注明出处。先告诉我你的身份：", role_buttons(self.taxonomy))]
        if command == "help":
            return [Reply(HELP)]
        if command == "ask":
            return self.ask(user, rest) if rest else [Reply("请在 /ask 后面写上问题，例如：/ask 体检费谁出？")]
        if command == "role":
            return [Reply("请选择你的身份：", role_buttons(self.taxonomy))]
        if command == "region":
            return self.region_picker(user)
        if command == "privacy":
            return [Reply(PRIVACY)]
        if command == "me":
            return [Reply(self.profile_text(user))]
        if command == "forget":
            return [Reply("确定要删除你的全部数据（身份、地区、测验记录）吗？此操作不能撤销。",
                          [[Button("确定删除", "forget:yes"), Button("取消", "forget:no")]])]
        if command == "obligations":
            user.pending = {"step": "ob_hazards", "hazards": [], "situations": [], "done": []}
            self.state.save_user(user)
            return [self.ob_hazards_reply(user)]
        if command == "quiz":
            return self.quiz.start(user)
        if command == "stats":
            if not is_admin:
                return [Reply("统计功能只对卫生健康部门管理员开放。")]
            return [Reply(self.stats_text())]
        return [Reply("我不认识这个命令。发送 /help 查看可以用的命令，或直接输入你的问题。")]

    def profile_text(self, user: User) -> str:
        """What is stored about the user (the taxonomy's profile fields, with labels) and how to change it."""
        lines = []
        for field in profile_fields(self.taxonomy):
            code = user.profile.get(field.code)
            if field.code in ("role", "region"):  # always shown: the two that shape every answer
                lines.append(f"· {field.label}：{field.options.get(code or '', code) or '未设置'}")
            elif code:  # "" is an optional field the user skipped
                lines.append(f"· {field.label}：{field.options.get(code, code)}")
        return ("我的资料：\n" + "\n".join(lines) + "\n更改：/role 身份 · /region 地区；/privacy 隐私说明；"
                "/forget 删除我的全部数据")

    def stats_text(self) -> str:
        """Headline figures of the newest open campaign, then the most frequent unanswered questions."""
        from bot.awareness import campaigns
        from bot.awareness.report import format_text
        from bot.quiz import forms as quiz

        parts = []
        open_ones = [c for c in quiz.list_campaigns(self.state) if c.status == "open"]
        if open_ones:
            report = campaigns.campaign_report(self.state, open_ones[-1].name, list(self.quiz.bank.values()),
                                               by=["industry"])
            parts.append(format_text(campaigns.label_report(report, self.taxonomy), max_groups=8, max_items=5))
        else:
            parts.append("【统计】目前没有进行中的测评活动（ohbot campaign create 创建）。")
        total, common = self.state.unanswered_summary(5, STATS_MIN_USERS)
        if total:  # counts and normalised questions only: nothing that could name the person who asked
            lines = [f"未能回答的问题共 {total} 次。"]
            if common:
                lines.append(f"其中至少 {STATS_MIN_USERS} 人问过的（已规范化）：")
                lines += [f"· {g['norm']}（{g['n']} 次，{g['users']} 人）" for g in common]
            parts.append("\n".join(lines))
        return "\n\n".join(parts)

    # ---- questions ----------------------------------------------------------------------------
    def ask(self, user: User, text: str) -> list[Reply]:
        """Answer a question; a follow-up is read with the user's question of the last ten minutes.
        Every reply is kept (so 👍/👎 can name it) and offers 👍/👎; refusals feed `ohbot gaps`."""
        if (refusal := too_long(text)) is not None:
            return [Reply(refusal)]
        if not _CJK.search(text):
            if _LATIN.search(text):
                return [Reply("目前只能回答中文问题，请用中文提问。Please ask in Chinese.")]
            return [Reply("请用文字描述你的问题，例如：体检费要我自己出吗？")]
        recent = self.state.recent(user.key)
        result = answer(self.retriever, text, role=user.role, region=user.profile.get("region"),
                        context=recent["question"] if recent else None)
        read_as = f"{result.follow_up_of} {text}" if result.follow_up_of else text
        answer_id = self.state.log_answer(user.key, read_as, result.text, result.decision, result.door,
                                          result.faq_id, result.confidence)
        self.state.remember(user.key, read_as, answer_id, result.more_id)
        if result.decision == "refuse":
            self.state.log_unanswered(read_as, user.key)
        return [self.answer_reply(user, result, answer_id)]

    def answer_reply(self, user: User, result: Answer, answer_id: int) -> Reply:
        """The answer with its buttons: related questions, then 更多 (when there is more) and 👍/👎."""
        text = result.text
        if result.found and user.role == "employer":  # phrased for the role: employers are pointed to their duties
            text += "\n\n（用人单位可发送 /obligations 自查本单位的法定义务）"
        first = ([Button("更多", f"more:{result.more_id}")] if result.more_id is not None else []) + [
            Button("👍 有用", f"fb:up:{answer_id}"), Button("👎 没用", f"fb:down:{answer_id}")]
        related = [[Button(q[:30], f"ask:{faq_id}")] for faq_id, q in result.related]
        return Reply(text + ("\n\n你可能还想问：" if related else ""), [*related, first])

    def more(self, user: User, chunk_id: int | None) -> list[Reply]:
        """The whole section behind an answer: the button's, or (typed 更多) the last answer's."""
        if chunk_id is None:
            recent = self.state.recent(user.key)
            if recent is None:
                return [Reply("没有可以展开的回答。请直接输入你的问题。")]
            chunk_id = recent["more_id"]
            if chunk_id is None:
                return [Reply("上一条回答已经是全部内容了。还有问题可以直接问我。")]
        text = full_section(self.retriever, chunk_id)
        if text is None:
            return [Reply("这个按钮已经过期了。请重新输入你的问题。")]
        return [Reply(text)]

    def feedback(self, user: User, answer_id: int | None, vote: str) -> list[Reply]:
        """👍/👎 on an answer (the button's, or typed: the last answer's); a 👎 asks for a reason."""
        if answer_id is None:
            recent = self.state.recent(user.key)
            answer_id = recent["answer_id"] if recent else None
            if answer_id is None:
                return [Reply("没有找到要评价的回答。请先提问。")]
        feedback_id = self.state.add_feedback(answer_id, user.key, vote)
        if feedback_id is None:
            return [Reply("这个按钮已经过期了。请重新输入你的问题。")]
        if vote == "up":
            return [Reply(FEEDBACK_THANKS)]
        user.pending = {"step": "fb_reason", "feedback": feedback_id}
        self.state.save_user(user)
        return [Reply(REASON_PROMPT, [[Button("跳过", "fb:skip")]])]

    def feedback_reason(self, user: User, text: str) -> list[Reply]:
        """The optional reason after a 👎; stored with the feedback, then back to questions."""
        self.state.set_feedback_reason(int(user.pending["feedback"]), text)
        user.pending = {}
        self.state.save_user(user)
        return [Reply("已记录，谢谢！我们会据此改进回答。")]

    # ---- buttons ------------------------------------------------------------------------------
    def on_button(self, user: User, data: str, is_admin: bool) -> list[Reply]:
        kind, _, value = data.partition(":")
        if kind in ("qz", "qa", "qm", "qs"):
            return self.quiz.on_button(user, data)
        if kind == "role" and value in self.roles:
            user.profile["role"] = value
            self.state.save_user(user)
            tip = "用人单位可以发送 /obligations 自查法定义务。" if value == "employer" else "可以直接输入你的问题。"
            return [Reply(f"好的，已设为“{self.roles[value]}”。{tip}\n要优先看你所在地区的文件，请发送 /region。")]
        if kind == "region":
            if value == "none":
                return self.set_region(user, None)
            if value == "text":
                user.pending = {"step": "region_text"}
                self.state.save_user(user)
                return [Reply("请输入你所在的区县或城市名称：")]
            regions = self.regions
            if value.isdecimal() and int(value) < len(regions):
                return self.set_region(user, regions[int(value)])
        if kind == "more" and value.isdecimal():
            return self.more(user, int(value))
        if kind == "fb":
            vote, _, ident = value.partition(":")
            if vote == "skip":
                user.pending = {}
                self.state.save_user(user)
                return [Reply("好的。还有问题可以继续问我。")]
            if vote in ("up", "down") and ident.isdecimal():
                return self.feedback(user, int(ident), vote)
        if kind == "ask":
            chunk = self.retriever.by_faq.get(value)
            if chunk is not None:
                return self.ask(user, chunk.section[0])
        if kind == "forget":
            if value == "yes":
                self.state.forget(user.key)
                return [Reply("已删除你的全部数据。需要时发送 /start 重新开始。")]
            return [Reply("已取消，数据没有删除。")]
        if kind == "ob" and user.pending.get("step", "").startswith("ob_"):
            return self.on_obligations(user, value)
        return [Reply("这个按钮已经过期了。请重新发送命令，或直接输入你的问题。")]

    def region_picker(self, user: User) -> list[Reply]:
        rows = [[Button(r, f"region:{i}")] for i, r in enumerate(self.regions)]
        rows.append([Button("手动输入", "region:text"), Button("不设置", "region:none")])
        current = user.profile.get("region") or "未设置"
        return [Reply(f"当前地区：{current}。请选择（有本地规划的地区会优先显示本地文件）：", rows)]

    def typed_region(self, user: User, text: str) -> list[Reply]:
        """A region typed by hand: stored only when it is a place name (bot.text.clean.clean_region),
        so what reaches the bureau's reports is a name, never a formula or a script."""
        try:
            region = clean_region(text)
        except ValueError:  # not stored; the step ends, so a question typed next is answered as usual
            user.pending = {}
            self.state.save_user(user)
            return [Reply(f"这不像地区名称，没有保存。地区名称以文字开头、最多 {REGION_MAX} 个字（例如：柳州市柳南区）；"
                          "请重新发送 /region 输入或从列表中选择。")]
        return self.set_region(user, region)

    def set_region(self, user: User, region: str | None) -> list[Reply]:
        user.profile["region"] = region
        user.pending = {}
        self.state.save_user(user)
        return [Reply(f"已设置地区：{region}。" if region else "已清除地区设置。")]

    # ---- employer self-check ------------------------------------------------------------------
    def ob_hazards_reply(self, user: User) -> Reply:
        return self.ob_toggle_reply(user.pending, "hazards", self.ob_hazards, OB_HAZARDS_PROMPT, "h")

    def on_obligations(self, user: User, value: str) -> list[Reply]:
        p = user.pending
        kind, _, code = value.partition(":")
        reply: Reply
        if p["step"] == "ob_hazards":
            if kind == "h" and code in self.ob_hazards:
                p["hazards"] = sorted(set(p["hazards"]) ^ {code})
                reply = self.ob_hazards_reply(user)
            else:
                p["step"] = "ob_headcount"
                reply = Reply("第2步：单位有多少名劳动者？",
                              [[Button(v, f"ob:n:{k}")] for k, v in self.ob_headcounts.items()])
        elif p["step"] == "ob_headcount" and kind == "n":
            p["headcount"], p["step"] = code, "ob_industry"
            industries = self.taxonomy["industries"]
            reply = Reply("第3步：单位属于哪个行业？", [[Button(v, f"ob:i:{k}")] for k, v in industries.items()])
        elif p["step"] == "ob_industry" and kind == "i":
            p["industry"], p["step"] = code, "ob_situations"
            reply = self.ob_toggle_reply(p, "situations", self.ob_situations, OB_SITUATIONS_PROMPT, "s")
        elif p["step"] == "ob_situations":
            if kind == "s" and code in self.ob_situations:
                p["situations"] = sorted(set(p["situations"]) ^ {code})
                reply = self.ob_toggle_reply(p, "situations", self.ob_situations, OB_SITUATIONS_PROMPT, "s")
            else:
                p["step"] = "ob_done"
                reply = self.ob_done_reply(p)
        elif p["step"] == "ob_done":
            duties = self._duties(p)
            if kind == "d" and code in {d.id for d in duties}:
                p["done"] = sorted(set(p["done"]) ^ {code})
                reply = self.ob_done_reply(p)
            else:
                label = self.taxonomy["industries"].get(p.get("industry"))
                user.pending = {}
                self.state.save_user(user)
                return [Reply(obligations.summary(duties, set(p["done"]), self.ob_headcounts.get(p.get("headcount") or ""), label))]
        else:
            return [Reply("这个按钮已经过期了。发送 /obligations 重新开始自查。")]
        user.pending = p
        self.state.save_user(user)
        return [reply]

    def _duties(self, p: dict) -> list[obligations.Duty]:
        return obligations.applicable(obligations.load_duties(self.settings.knowledge_dir),
                                      set(p["hazards"]), set(p["situations"]))

    @staticmethod
    def ob_toggle_reply(p: dict, key: str, options: dict, prompt: str, tag: str) -> Reply:
        chosen = set(p.get(key, []))
        rows = [[Button(("☑ " if k in chosen else "☐ ") + v, f"ob:{tag}:{k}")] for k, v in options.items()]
        return Reply(prompt, rows + [[Button("下一步", "ob:next")]])

    def ob_done_reply(self, p: dict) -> Reply:
        duties = {d.id: d.duty[:24] for d in self._duties(p)}
        return self.ob_toggle_reply(p, "done", duties, "第5步：下面这些义务，单位已经落实了哪些？（勾选已落实的，然后点“下一步”看结果）", "d")


def open_dialogue(settings: Settings, build_if_missing: bool = True) -> Dialogue:
    """Load the index (building it on first run if allowed) and the state database."""
    retriever = open_retriever(settings, build_if_missing=build_if_missing)
    index = LiveIndex(retriever, settings.index_dir, settings.model, settings.backend, cache_dir=settings.models_dir,
                      warm=lambda new: answer(new, WARM_QUESTION))
    return Dialogue(index, open_state(settings), settings)

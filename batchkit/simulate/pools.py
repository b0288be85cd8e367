"""Sentence and heading pools for generated content, built once at import.

Sentences are combined from short fragments about software products, so the
generator only picks from ready lists at request time.
"""

import random

POOL_SIZE = 600

_EN_SUBJECTS = (
    "The product",
    "The onboarding flow",
    "The data pipeline",
    "Each release",
    "The support team",
    "The model gateway",
    "The billing service",
    "The admin console",
    "The mobile client",
    "The analytics layer",
    "The review process",
    "The public API",
)
_EN_VERBS = (
    "should record",
    "must validate",
    "will expose",
    "needs to track",
    "is expected to reduce",
    "can summarize",
    "should cache",
    "has to respect",
    "will report",
    "must encrypt",
    "should measure",
    "is designed to simplify",
)
_EN_OBJECTS = (
    "every user request",
    "the weekly retention rate",
    "inference cost per task",
    "the latency of each model call",
    "failed payment attempts",
    "the audit trail of account changes",
    "feedback from early customers",
    "the quality of generated answers",
    "usage limits for each workspace",
    "errors raised by third-party services",
    "the time to first value",
    "schema changes in the event store",
)
_EN_TAILS = (
    "",
    " before the next planning cycle",
    " so that the team can act on facts",
    " without blocking the main workflow",
    " within the agreed service levels",
    " for every supported region",
    " while keeping the interface simple",
    " as part of the first milestone",
    " under realistic production load",
    " with clear ownership in the team",
)

_ZH_SUBJECTS = (
    "本产品",
    "新用户引导流程",
    "数据管道",
    "每个版本",
    "客服团队",
    "模型网关",
    "计费服务",
    "管理后台",
    "移动客户端",
    "分析层",
    "评审流程",
    "开放接口",
)
_ZH_VERBS = (
    "应当记录",
    "必须校验",
    "将会提供",
    "需要跟踪",
    "预计可以降低",
    "可以汇总",
    "应当缓存",
    "必须遵守",
    "将会报告",
    "必须加密",
    "应当衡量",
    "旨在简化",
)
_ZH_OBJECTS = (
    "每一次用户请求",
    "每周留存率",
    "每个任务的推理成本",
    "每次模型调用的延迟",
    "失败的支付尝试",
    "账户变更的审计记录",
    "早期客户的反馈",
    "生成答案的质量",
    "每个工作区的用量上限",
    "第三方服务返回的错误",
    "用户获得价值的时间",
    "事件存储中的结构变更",
)
_ZH_TAILS = (
    "",
    "，并在下一个规划周期前完成",
    "，以便团队依据事实做出决策",
    "，同时不影响主要业务流程",
    "，并满足约定的服务水平",
    "，覆盖所有支持的地区",
    "，同时保持界面简洁",
    "，作为第一个里程碑的一部分",
    "，并在真实的生产负载下验证",
    "，并明确团队中的负责人",
)

EN_HEADINGS = (
    "Overview",
    "Goals and Scope",
    "Target Users",
    "Key Features",
    "System Architecture",
    "Data Model",
    "API Design",
    "Security and Privacy",
    "Performance Requirements",
    "Deployment Plan",
    "Testing Strategy",
    "Metrics and Success Criteria",
    "Risks and Mitigations",
    "Timeline and Milestones",
    "Open Questions",
    "Operations and Monitoring",
    "Pricing and Packaging",
    "Competitive Landscape",
    "Dependencies",
    "Next Steps",
)
ZH_HEADINGS = (
    "概述",
    "目标与范围",
    "目标用户",
    "核心功能",
    "系统架构",
    "数据模型",
    "接口设计",
    "安全与隐私",
    "性能要求",
    "部署计划",
    "测试策略",
    "指标与成功标准",
    "风险与应对措施",
    "时间表与里程碑",
    "待解决的问题",
    "运维与监控",
    "定价与套餐",
    "竞争格局",
    "依赖关系",
    "后续步骤",
)

EN_TITLES = (
    "Product Requirements Document",
    "Technical Architecture",
    "API Design Guide",
    "Database Schema Design",
    "Deployment Guide",
    "Test Plan",
    "Market Analysis",
    "Development Rules",
)
ZH_TITLES = (
    "产品需求文档",
    "技术架构",
    "接口设计指南",
    "数据库结构设计",
    "部署指南",
    "测试计划",
    "市场分析",
    "开发规范",
)

_REASONING_OPENERS = (
    "The user wants",
    "I need to produce",
    "The request asks for",
    "Let me plan",
    "First I should outline",
    "I will check",
    "The key point is",
    "Next I should cover",
)
_REASONING_OBJECTS = (
    "a structured Markdown document",
    "the requested length and language",
    "one title and several sections",
    "the product details given in the prompt",
    "concrete and checkable statements",
    "the heading structure of the source",
    "a short summary at the end",
    "the constraints on format",
)


def _combine(parts: tuple[tuple[str, ...], ...], template: str) -> tuple[str, ...]:
    chooser = random.Random(0)
    sentences = []
    for _ in range(POOL_SIZE):
        sentences.append(template.format(*(chooser.choice(part) for part in parts)))
    return tuple(sentences)


EN_SENTENCES = _combine(
    (_EN_SUBJECTS, _EN_VERBS, _EN_OBJECTS, _EN_TAILS), "{} {} {}{}."
)
ZH_SENTENCES = _combine((_ZH_SUBJECTS, _ZH_VERBS, _ZH_OBJECTS, _ZH_TAILS), "{}{}{}{}。")
REASONING_SENTENCES = _combine((_REASONING_OPENERS, _REASONING_OBJECTS), "{} {}.")

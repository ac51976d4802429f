"""A small Chinese -> English keyword table for describing a host, used when no LLM is configured.

Stable Diffusion 1.5/SDXL's text encoders read English. Without an LLM, a Chinese description is
turned into English keywords by longest match against this table. It covers what people say about
how a host looks, and nothing else:

- who: 女/男 and their usual words (女生, 男生, 女孩, 男孩, 小姐姐, 小哥哥, 女主播, 男主播, 女士, 先生 ...)
  and age (年轻, 中年, 老年, 少女, 大叔, 阿姨 ...);
- hair: length, shape and colour (长发, 短发, 卷发, 直发, 马尾, 双马尾, 丸子头, 刘海, 光头, 黑发, 金发,
  棕发, 银发, 白发, 红发 ...);
- face and expression: 微笑, 笑容, 开心, 严肃, 大眼睛, 眼镜, 胡子, 雀斑, 化妆, 酒窝 ...;
- clothes and accessories: 西装, 衬衫, T恤, 连衣裙, 毛衣, 卫衣, 外套, 夹克, 旗袍, 汉服, 和服, 校服,
  领带, 耳环, 项链, 帽子 ...;
- colours (白, 黑, 红, 粉, 橙, 黄, 绿, 蓝, 紫, 灰, 棕, 金, 银 with or without 色), joined to the
  garment or hair that follows them ("白色衬衫" -> "white shirt");
- style and mood: 动漫, 二次元, 卡通, 写实, 真人, 照片, 可爱, 优雅, 专业, 活泼, 温柔, 成熟, 帅气, 漂亮 ...;
- background words (绿幕, 绿色背景) that ask for the green-screen backdrop.

Speech recognition often writes traditional characters (長髮, 年輕): they are mapped to simplified
ones first. Filler words (我想要, 一个, 的, 穿着 ...) are dropped; any other Chinese is reported back
as not understood, so the operator knows what the template ignored.
"""

from __future__ import annotations

WHO = {
    "女主播": "woman", "男主播": "man", "女生": "woman", "男生": "man", "女孩": "girl", "男孩": "boy",
    "女孩子": "girl", "男孩子": "boy", "小姐姐": "young woman", "小哥哥": "young man", "女士": "woman",
    "先生": "man", "女人": "woman", "男人": "man", "姑娘": "young woman", "少女": "young woman", "少年": "young man",
    "大叔": "middle-aged man", "阿姨": "middle-aged woman", "奶奶": "elderly woman", "爷爷": "elderly man",
    "女": "woman", "男": "man",
}
AGE = {
    "年轻": "young", "中年": "middle-aged", "老年": "elderly", "年长": "older", "二十多岁": "in her twenties",
    "三十多岁": "in their thirties",
}
COLOURS = {
    "白色": "white", "黑色": "black", "红色": "red", "粉色": "pink", "粉红色": "pink", "橙色": "orange",
    "黄色": "yellow", "绿色": "green", "蓝色": "blue", "浅蓝色": "light blue", "深蓝色": "navy blue",
    "紫色": "purple", "灰色": "grey", "棕色": "brown", "咖啡色": "brown", "金色": "golden", "银色": "silver",
    "米色": "beige", "白": "white", "黑": "black", "红": "red", "粉": "pink", "黄": "yellow", "绿": "green",
    "蓝": "blue", "紫": "purple", "灰": "grey", "棕": "brown", "金": "blond", "银": "silver",
}
HAIR = {
    "长发": "long hair", "长头发": "long hair", "短发": "short hair", "短头发": "short hair", "卷发": "curly hair",
    "直发": "straight hair", "马尾": "ponytail", "马尾辫": "ponytail", "双马尾": "twin tails",
    "丸子头": "hair bun", "刘海": "bangs", "齐刘海": "blunt bangs", "光头": "bald", "波波头": "bob haircut",
    "黑发": "black hair", "金发": "blond hair", "棕发": "brown hair", "银发": "silver hair", "白发": "white hair",
    "红发": "red hair", "头发": "hair", "发": "hair",
}
FACE = {
    "微笑": "smiling", "笑容": "warm smile", "笑": "smiling", "开心": "cheerful", "严肃": "serious",
    "大眼睛": "big eyes", "眼睛": "eyes", "戴眼镜": "wearing glasses", "眼镜": "glasses", "胡子": "beard",
    "雀斑": "freckles", "化妆": "makeup", "淡妆": "light makeup", "酒窝": "dimples", "圆脸": "round face",
    "瓜子脸": "oval face",
}
CLOTHES = {
    "西装": "suit", "衬衫": "shirt", "T恤": "t-shirt", "t恤": "t-shirt", "连衣裙": "dress", "裙子": "skirt",
    "毛衣": "sweater", "卫衣": "hoodie", "外套": "jacket", "夹克": "jacket", "旗袍": "qipao", "汉服": "hanfu",
    "和服": "kimono", "校服": "school uniform", "制服": "uniform", "领带": "tie", "耳环": "earrings",
    "项链": "necklace", "帽子": "hat", "围巾": "scarf", "上衣": "top", "背心": "vest",
}
STYLE = {
    "动漫": "anime style", "二次元": "anime style", "卡通": "cartoon style", "写实": "photorealistic",
    "真人": "realistic photo", "照片": "photo", "可爱": "cute", "优雅": "elegant", "专业": "professional",
    "活泼": "lively", "温柔": "gentle", "成熟": "mature", "帅气": "handsome", "帅": "handsome",
    "漂亮": "beautiful", "美丽": "beautiful", "亲切": "friendly", "友好": "friendly", "自信": "confident",
    "时尚": "fashionable", "知性": "intellectual",
}
GREEN_SCREEN = ("绿幕", "绿色背景", "绿背景")
FILLER = (
    "我想要", "我希望", "我要", "我想", "希望", "想要", "请", "帮我", "生成", "画", "做", "一个", "一位", "一名", "个", "位",
    "的", "是", "有", "穿着", "穿", "着", "戴着", "戴", "和", "跟", "还", "很", "比较", "非常", "特别", "有点", "一点",
    "样子", "形象", "主播", "直播", "带货", "长得", "长相", "看起来", "留着", "留", "一头", "她", "他", "要", "在", "让",
    "背景", "然后", "并且", "而且", "那种", "这种", "感觉", "风格", "一副", "副", "件", "条", "身", "上",
)
TRADITIONAL = str.maketrans(
    "輕長頭髮發鏡裝襯藍紅綠黃銀條優專業潑溫愛個鬍鬚漢馬環圓臉寫實動畫風氣質滿淺帥麗時親戲們讓還"
    "並樣這種覺帶貨齊圍領項鏈連衛細織紗歲開嚴肅雙辮製妝窩掛聽說話為會對綁麼著給張膚鬆捲裡裏來點熱幫產紀",
    "轻长头发发镜装衬蓝红绿黄银条优专业泼温爱个胡须汉马环圆脸写实动画风气质满浅帅丽时亲戏们让还"
    "并样这种觉带货齐围领项链连卫细织纱岁开严肃双辫制妆窝挂听说话为会对绑么着给张肤松卷里里来点热帮产纪",
)
"""Traditional forms of the characters above (and common filler) to simplified ones."""

//! Finding pages by name or id: `ministry` finds "Ministry of Interior",
//! `interieur` finds "Ministère de l'Intérieur", `الداخليه` finds
//! "وزارة الداخلية".
//!
//! Both the query and each page's id and name are folded: compatibility
//! decomposition (NFKD), combining marks dropped (Latin accents, Arabic
//! short vowels and hamza marks, so أ إ آ read as ا), lowercase, and
//! Arabic's interchangeable letters made one (ة as ه, ى as ي; the
//! elongating tatweel dropped). A page matches when the folded query is a
//! substring of its folded id or name.
//!
//! The folded texts are built once per view, at its first search (a view
//! lives one ranking interval), and a search scans them: O(pages) per
//! query. At 100,000 pages (`cargo bench -p engagement-core --bench engine
//! -- view/search`): 49 ms for a view's first search, 1.8 ms for the next.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Most bytes of a folded query.
pub const MAX_QUERY_BYTES: usize = 256;

/// `s` folded for matching (see the module doc).
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd() {
        if is_combining_mark(c) || c == '\u{0640}' {
            continue;
        }
        match c {
            'ة' => out.push('ه'),
            'ى' => out.push('ي'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Each live page's folded id and name, in (platform, id) order.
#[derive(Debug, Default)]
pub(super) struct Folded {
    /// (page, folded id, then a NUL, then the folded name).
    pages: Vec<(u32, String)>,
}

impl Folded {
    pub(super) fn new(pages: impl Iterator<Item = (u32, String)>) -> Folded {
        Folded { pages: pages.collect() }
    }

    /// The pages matching `folded` (a folded query), in (platform, id)
    /// order: the first `limit` of them and how many there are.
    pub(super) fn find(&self, folded: &str, limit: usize) -> (Vec<u32>, usize) {
        let mut found = Vec::new();
        let mut total = 0;
        for (p, text) in &self.pages {
            if text.split('\0').any(|part| part.contains(folded)) {
                total += 1;
                if found.len() < limit {
                    found.push(*p);
                }
            }
        }
        (found, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_accents_and_arabic_marks_fold_away() {
        assert_eq!(fold("Ministère de l'INTÉRIEUR"), "ministere de l'interieur");
        assert!(fold("وزارة الداخلية - Egypt").contains(&fold("الداخليه")));
        assert_eq!(fold("أحمد"), fold("احمد"), "hamza on alef");
        assert_eq!(fold("إسلام"), fold("اسلام"));
        assert_eq!(fold("مُحَمَّد"), fold("محمد"), "short vowels");
        assert_eq!(fold("مصطفى"), fold("مصطفي"), "alef maksura");
        assert_eq!(fold("الـــداخلية"), fold("الداخلية"), "tatweel");
        assert_eq!(fold("ﬁnance"), "finance", "compatibility forms");
        assert_eq!(fold("Straße"), "straße");
    }

    #[test]
    fn a_page_matches_by_id_or_name_and_results_are_bounded() {
        let f = Folded::new(
            [
                (0, "moi.egy\0وزارة الداخلية - egypt, ministry of interior"),
                (1, "whitehouse\0the white house"),
                (2, "ministry\0"),
            ]
            .into_iter()
            .map(|(p, t)| (p, t.split('\0').map(fold).collect::<Vec<_>>().join("\0"))),
        );
        assert_eq!(f.find(&fold("Ministry"), 10), (vec![0, 2], 2));
        assert_eq!(f.find(&fold("ministry"), 1), (vec![0], 2), "bounded, the total still counted");
        assert_eq!(f.find(&fold("الداخلية"), 10), (vec![0], 1));
        assert_eq!(f.find("y\0w", 10), (vec![], 0), "never across the id and the name");
    }
}

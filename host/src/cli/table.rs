//! Aligned text tables for listings (`ps`, `scripts`, `bindings`): columns
//! as wide as their widest cell (counted in characters, not bytes), two
//! spaces apart, the last column not padded, like `docker ps`.

/// Render `header` and `rows` (each as many cells as `header`), one line each.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i < last {
                s.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up_whatever_the_cell_widths() {
        let rows = vec![
            vec!["a-long-name".to_string(), "x".into(), "last".into()],
            vec!["é".to_string(), "wider-cell".into(), "".into()],
        ];
        let lines = super::render(&["NAME", "B", "C"], &rows);
        assert_eq!(lines[0], "NAME         B           C");
        assert_eq!(lines[1], "a-long-name  x           last");
        assert_eq!(lines[2], "é            wider-cell");
        let col = |l: &str| l.chars().position(|c| c == 'x' || c == 'w' || c == 'B');
        assert_eq!(col(&lines[0]), col(&lines[1]));
    }
}

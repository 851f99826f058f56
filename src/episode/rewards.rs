//! The protocol's rewards: the solver's +/-1 per attempt, the solve rate over G attempts, and
//! the injector's reward, which peaks for bugs that are hard but solvable.

/// Solver attempts per artifact in the paper (G).
pub const DEFAULT_ATTEMPTS: usize = 8;

/// The paper's alpha: the injector's penalty for bugs that are impossible or trivial.
pub const DEFAULT_ALPHA: f64 = 0.8;

/// The fraction of attempts that solved the bug (0 when there were none).
pub fn solve_rate(solved: &[bool]) -> f64 {
    if solved.is_empty() {
        return 0.0;
    }
    solved.iter().filter(|s| **s).count() as f64 / solved.len() as f64
}

/// The injector's reward: -1 for an invalid artifact; -alpha when every attempt or none
/// solved it; otherwise 1 - (1 + alpha) * s.
pub fn injector_reward(valid: bool, solve_rate: f64, alpha: f64) -> f64 {
    if !valid {
        -1.0
    } else if solve_rate <= 0.0 || solve_rate >= 1.0 {
        -alpha
    } else {
        1.0 - (1.0 + alpha) * solve_rate
    }
}

/// Group-relative advantages: each reward minus its group's mean, over the group's standard
/// deviation; 0 for a group whose rewards are all equal (it says nothing about which choice
/// was better).
pub fn group_advantages(rewards: &[f64]) -> Vec<f64> {
    if rewards.is_empty() {
        return Vec::new();
    }
    let n = rewards.len() as f64;
    let mean = rewards.iter().sum::<f64>() / n;
    let var = rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt();
    if std < 1e-9 {
        return vec![0.0; rewards.len()];
    }
    rewards.iter().map(|r| (r - mean) / std).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injector_reward_follows_the_protocol() {
        let a = DEFAULT_ALPHA;
        assert_eq!(injector_reward(false, 0.5, a), -1.0);
        assert_eq!(injector_reward(true, 0.0, a), -0.8);
        assert_eq!(injector_reward(true, 1.0, a), -0.8);
        assert!((injector_reward(true, 1.0 / 8.0, a) - 0.775).abs() < 1e-12);
        assert!((injector_reward(true, 0.5, a) - 0.1).abs() < 1e-12);
        let mut solved = [false; 8];
        assert_eq!(solve_rate(&solved), 0.0);
        solved[3] = true;
        assert_eq!(solve_rate(&solved), 0.125);
        assert_eq!(solve_rate(&[]), 0.0);
    }

    #[test]
    fn advantages_are_relative_to_the_group() {
        assert_eq!(group_advantages(&[1.0, 1.0, 1.0]), vec![0.0; 3]);
        let a = group_advantages(&[1.0, -1.0, -1.0, -1.0]);
        assert!(a[0] > 0.0 && a[1] < 0.0);
        assert!(a.iter().sum::<f64>().abs() < 1e-9);
        assert!((a[0] - 3f64.sqrt()).abs() < 1e-9);
        assert!(group_advantages(&[]).is_empty());
    }
}

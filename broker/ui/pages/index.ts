// The console's page renderers: pure functions from a UiContext and data to the Html of a page's body
// (wrap it with renderPage from ../html.js).
export { renderReviews, filterReviews, pendingFirst, type ReviewFilters } from './reviews.js';
export { renderReview } from './review.js';
export { renderSessions, type SessionFilters } from './sessions.js';
export { renderSession } from './session.js';
export { renderLogins, type LoginRow, type LoginFilters } from './logins.js';
export { renderPolicy, renderPolicyVersion } from './policy.js';
export { renderError, renderSignIn } from './errors.js';

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter
from . import bp, service
from .forms import EmptyForm, LoginForm, PasswordForm, ProfileForm, RegisterForm, ResetDemoForm


def _auth_limit():
    return current_app.config["RATELIMIT_AUTH"]


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths, so a crafted link cannot send users elsewhere."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("core.index")


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("core.index"))
    form = RegisterForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = service.register_user(form.name.data, form.email.data, form.password.data)
        except service.AuthError as err:
            form.email.errors.append(err.message)
            status = err.status_code
        else:
            login_user(user)
            flash(f"Welcome, {user.name}! Your demo balance is ready.", "success")
            return redirect(url_for("core.index"))
    elif request.method == "POST":
        status = 400
    return render_template("auth/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.index"))
    form = LoginForm()
    status = 200
    error = None
    if form.validate_on_submit():
        try:
            user = service.authenticate(form.email.data, form.password.data)
        except service.AuthError as err:
            error, status = err.message, err.status_code
        else:
            login_user(user, remember=form.remember.data)
            flash(f"Signed in as {user.name}.", "success")
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form, error=error), status


@bp.route("/logout", methods=["POST"])
def logout():
    form = EmptyForm()
    if form.validate_on_submit():
        logout_user()
        flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    profile_form = ProfileForm(obj=current_user, prefix="profile")
    password_form = PasswordForm(prefix="password")
    reset_form = ResetDemoForm(prefix="reset")
    status = 200
    if request.method == "POST":
        if "profile-name" in request.form:
            if profile_form.validate_on_submit():
                service.update_profile(current_user, profile_form.name.data)
                flash("Profile saved.", "success")
                return redirect(url_for("auth.profile"))
            status = 400
        elif password_form.validate_on_submit():
            try:
                service.change_password(current_user, password_form.current_password.data, password_form.new_password.data)
            except service.AuthError as err:
                password_form.current_password.errors.append(err.message)
                status = err.status_code
            else:
                login_user(current_user)  # the nonce changed: keep this session alive
                flash("Password changed. Other sessions have been signed out.", "success")
                return redirect(url_for("auth.profile"))
        else:
            status = 400
    return render_template(
        "auth/profile.html", profile_form=profile_form, password_form=password_form, reset_form=reset_form
    ), status


@bp.route("/account/reset-demo", methods=["POST"])
@login_required
def reset_demo():
    form = ResetDemoForm(prefix="reset")
    if not form.validate_on_submit():
        return render_template(
            "auth/profile.html",
            profile_form=ProfileForm(obj=current_user, prefix="profile"),
            password_form=PasswordForm(prefix="password"),
            reset_form=form,
        ), 400
    balance = service.reset_demo_balance(current_user.id)
    flash(f"Demo balance reset to {balance:,.2f}.", "success")
    return redirect(url_for("auth.profile")), 303
